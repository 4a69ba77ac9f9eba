"""The bundled model's tool calls, followed while they are generated, so their arguments stream.

Under its grammar the model writes `{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}`.
`CallScanner` reads that text a token at a time and keeps, per call, its name (once the name's
string is whole) and the JSON text of its arguments so far. `CallStream` turns that into tool-call
deltas: a call opens once its name is known, then its arguments go out fragment by fragment.

Small models repeat themselves; the same call twice counts once. A call that, so far, repeats one
already sent is held back; it is dropped if it ends identical, and streams (catching up) as soon as
it differs.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from assistd.providers.base import Chunk, ToolCallDelta

_ITEM_PATH = ["{", "[", "{"]  # the root object, its tool_calls array, one call
_CALLS_KEY, _NAME_KEY, _ARGUMENTS_KEY = "tool_calls", "name", "arguments"


@dataclass
class ScannedCall:
    name: str | None = None
    arguments: str = ""  # the arguments' JSON text so far; raw control characters in strings escaped
    compact: str = ""  # the same without whitespace outside strings: what repeats are compared on
    done: bool = False  # the call's object has closed


class CallScanner:
    """A character-level reader of the calls object: structure, keys, the name and the arguments' span."""

    def __init__(self) -> None:
        self.calls: list[ScannedCall] = []
        self._stack: list[str] = []  # open containers, "{" or "["
        self._keys: list[str | None] = []  # per open object: the key whose value is being read
        self._states: list[str] = []  # per container: "key", "colon", "value" (expected), "next"
        self._in_string = False
        self._escaped = False
        self._string: list[str] = []  # the raw text of the key or value string being read
        self._string_is_key = False
        self._capture: str | None = None  # reading the arguments: "container", "string" or "scalar"
        self._scalar = ""  # the bare number/true/false/null being read
        self._after_comma = False  # the last structural character was a comma

    def closing(self) -> str:
        """The text that closes everything still open, when generation stopped before the JSON ended.

        Deterministic: an open string is ended (a pending escape completed), a bare literal finished,
        a missing value written `null`, then every open container closed. The result parses; what was
        cut is lost, so the arguments may miss required fields.
        """
        probe = copy.deepcopy(self)
        out = ""
        for _ in range(4 * len(probe._stack) + 8):
            piece = probe._next_closing()
            if not piece:
                break
            probe.feed(piece)
            out += piece
        return out

    def _next_closing(self) -> str:
        if self._in_string:
            raw = "".join(self._string)
            unicode = re.search(r"\\u[0-9a-fA-F]{0,3}$", raw)
            if unicode:
                return "0" * (6 - len(unicode.group())) + '"'
            return '\\"' if self._escaped else '"'
        if self._scalar:
            for word in ("true", "false", "null"):
                if word.startswith(self._scalar) and word != self._scalar:
                    return word[len(self._scalar) :]
            if self._scalar[0] in "-0123456789" and self._scalar[-1] in "-+.eE":
                return "0"
        if not self._stack:
            return ""
        state = self._states[-1]
        if state == "colon":
            return ":"
        if state == "value" and (self._stack[-1] == "{" or self._after_comma):
            if self._stack[-1] == "{" and self._stack == _ITEM_PATH and self._keys[-1] == _ARGUMENTS_KEY:
                return "{}"
            return "null"
        if state == "key" and self._after_comma:
            return '"":null'
        return "}" if self._stack[-1] == "{" else "]"

    def feed(self, text: str) -> None:
        for char in text:
            self._char(char)

    def _in_call(self) -> bool:
        return self._stack == _ITEM_PATH and self._keys[0] == _CALLS_KEY

    def _at_arguments(self) -> bool:
        """Where a call's arguments value is about to start."""
        return self._in_call() and self._states[-1] == "value" and self._keys[-1] == _ARGUMENTS_KEY

    def _char(self, char: str) -> None:
        if self._in_string:
            self._string_char(char)
            return
        if self._capture == "scalar" and (char in ",}]" or char.isspace()):
            self._capture = None  # a bare number, true, false or null ends before this character
        if self._capture is None and not char.isspace() and self._at_arguments():
            self._capture = "container" if char in "{[" else "string" if char == '"' else "scalar"
        if self._capture is not None:
            self._take(char)
        if char.isspace():
            self._scalar = ""
            return
        if char in '{}[]:,"':
            self._scalar = ""
            self._after_comma = char == ","
        else:
            self._scalar += char
            self._after_comma = False
        if self._states and self._states[-1] == "value" and char not in "]}":
            self._states[-1] = "next"  # this character starts the value the container was waiting for
        if char == '"':
            self._in_string = True
            self._string = []
            self._string_is_key = bool(self._states) and self._states[-1] == "key"
        elif char in "{[":
            if char == "{" and self._stack == _ITEM_PATH[:2] and self._keys[0] == _CALLS_KEY:
                self.calls.append(ScannedCall())
            self._stack.append(char)
            self._keys.append(None)
            self._states.append("key" if char == "{" else "value")
        elif char in "}]":
            if not self._stack:
                return
            closing_call = self._in_call()
            self._stack.pop()
            self._keys.pop()
            self._states.pop()
            if closing_call and self.calls:
                self.calls[-1].done = True
            if self._capture == "container" and self._stack == _ITEM_PATH:
                self._capture = None
        elif char == ":" and self._states and self._states[-1] == "colon":
            self._states[-1] = "value"
        elif char == "," and self._stack:
            self._states[-1] = "key" if self._stack[-1] == "{" else "value"

    def _string_char(self, char: str) -> None:
        if self._capture is not None:
            self._take(char)
        if self._escaped:
            self._escaped = False
        elif char == "\\":
            self._escaped = True
        elif char == '"':
            self._in_string = False
            self._string_done()
            return
        self._string.append(char)

    def _string_done(self) -> None:
        raw = "".join(self._string)
        if self._string_is_key:
            self._keys[-1] = raw
            self._states[-1] = "colon"
            return
        if self._capture == "string" and self._stack == _ITEM_PATH:
            self._capture = None
        if self._in_call() and self._keys[-1] == _NAME_KEY and self.calls:
            try:
                self.calls[-1].name = json.loads(f'"{raw}"', strict=False)
            except ValueError:
                self.calls[-1].name = raw

    def _take(self, char: str) -> None:
        """One character of the current call's arguments."""
        call = self.calls[-1]
        if self._in_string and char < " ":
            char = json.dumps(char)[1:-1]  # llama.cpp's JSON grammar lets raw control characters in
        call.arguments += char
        if self._in_string or not char.isspace():
            call.compact += char


class CallStream:
    """Scanned calls as ToolCallDelta chunks, repeats held back and dropped (see the module docstring)."""

    def __init__(self, put: Callable[[Chunk], None], names: set[str] | None = None) -> None:
        self.scanner = CallScanner()
        self._put = put
        self._names = names  # the offered functions: a call cut inside its name is never opened
        self._sent: list[tuple[str, str]] = []  # (name, compact arguments) of every call that went out whole
        self._index: dict[int, int] = {}  # scanned call → its index in the output
        self._shown: dict[int, int] = {}  # scanned call → characters of its arguments already sent
        self._dropped: set[int] = set()

    @property
    def count(self) -> int:
        """Calls sent (repeats not counted)."""
        return len(self._index)

    def feed(self, text: str) -> None:
        self.scanner.feed(text)
        for position, call in enumerate(self.scanner.calls):
            if position not in self._dropped and call.name is not None:
                if self._names is not None and call.name not in self._names:
                    self._dropped.add(position)
                    continue
                self._advance(position, call, call.name)

    def close(self) -> str:
        """Close what generation left open (see `CallScanner.closing`); give every open call arguments.

        Returns the text added, for the caller's copy of the whole output.
        """
        suffix = self.scanner.closing()
        if suffix:
            self.feed(suffix)
        for position, index in self._index.items():
            if not self.scanner.calls[position].arguments:
                self._put(Chunk(tool_calls=[ToolCallDelta(index=index, arguments="{}")]))
        return suffix

    def _advance(self, position: int, call: ScannedCall, name: str) -> None:
        if position not in self._index:
            if any(n == name and compact.startswith(call.compact) for n, compact in self._sent):
                if call.done:  # it ended exactly as an earlier call: one call
                    self._dropped.add(position)
                return
            self._index[position] = len(self._index)
            self._shown[position] = 0
            opening = ToolCallDelta(index=self._index[position], id=f"call_{uuid.uuid4().hex[:24]}", name=name)
            self._put(Chunk(tool_calls=[opening]))
        fragment = call.arguments[self._shown[position] :]
        if fragment:
            self._shown[position] = len(call.arguments)
            self._put(Chunk(tool_calls=[ToolCallDelta(index=self._index[position], arguments=fragment)]))
        if call.done and (name, call.compact) not in self._sent:
            self._sent.append((name, call.compact))
