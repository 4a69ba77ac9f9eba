"""The bundled model's text answers, checked while they stream: no internal call syntax, no loops.

`TextGuard` sits between the model and the client. It holds back, for as long as it is undecided,
text that could turn out to be

- the internal call syntax (a line starting `call:` or `{"tool_calls"`, what the model sees of its
  own earlier calls in the prompt): generation stops there and that line is never sent; so do the
  variants a small model makes of it with an offered tool's name (`tool_names`): a line starting
  `get_ticker: {` or `get_ticker: [`, or `{"name": "get_ticker"` anywhere;
- a leading `message:` (the opening the model chooses between): dropped, the answer follows;
- a sentence (four words or more) that was already written `repeat_limit - 1` times: when it ends
  the same, generation stops and the text kept is what came before it; as soon as it differs it
  streams;

and stops a loop of a few words repeated with no sentence end (`the the the …`, `_h_h_h`) once
the loop is long (`LOOP_WORDS` words), keeping the first copy of the repeated block when it was not
sent yet. Inside a fenced code block (```), where lines repeat legitimately, only the call syntax is
checked.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

CALL_MARKERS = ("call:", '{"tool_calls"')
INLINE_MARKERS = ("call:{", '{"tool_calls"')  # anywhere in a line (whitespace ignored)
MESSAGE_MARKER = "message:"
MIN_SENTENCE_WORDS = 4
LOOP_WORDS = 24  # a block of words repeated back to back this long (in words) is a loop
_SENTENCE_END = re.compile(r"[.!?]+(?=\s)|\n")
_WORD = re.compile(r"\S+")
# For measuring: the internal syntax anywhere in a text.
LEAK = re.compile(r'(?i)\bcall\s*:\s*\{|\{\s*"tool_calls"|^\s*message\s*:', re.MULTILINE)


def _norm(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def repeated_sentence(text: str) -> bool:
    """Whether a sentence of MIN_SENTENCE_WORDS words or more occurs twice in `text` (for measuring)."""
    seen: set[str] = set()
    start = 0
    for end in [m.end() for m in _SENTENCE_END.finditer(text + "\n")]:
        norm = _norm(text[start:end])
        start = end
        if len(norm.split()) >= MIN_SENTENCE_WORDS:
            if norm in seen:
                return True
            seen.add(norm)
    return False


@dataclass
class TextGuard:
    """Feed the model's text as it comes; send what `feed` returns; `finish` returns the rest."""

    repeat_limit: int = 2  # stop when a sentence comes for this time; 0: no repetition guard
    block_calls: bool = True
    tool_names: tuple[str, ...] = ()  # the offered tools: a call written as text with their names is cut too
    stopped: str | None = None  # why generation must stop: "call" or "repeat"
    _buf: str = ""
    _emitted: int = 0
    _sentence_start: int = 0
    _scanned: int = 0
    _counts: Counter[str] = field(default_factory=Counter)
    _lead_checked: bool = False
    _line_markers: tuple[str, ...] = CALL_MARKERS
    _inline_markers: tuple[str, ...] = INLINE_MARKERS

    def __post_init__(self) -> None:
        names = ["".join(name.split()).lower() for name in self.tool_names if name.strip()]
        self._line_markers = CALL_MARKERS + tuple(f"{n}:{b}" for n in names for b in "{[")
        self._inline_markers = INLINE_MARKERS + tuple(f'{{"name":"{n}"' for n in names)

    @property
    def text(self) -> str:
        """What was sent so far."""
        return self._buf[: self._emitted]

    def halted(self) -> bool:
        return self.stopped is not None

    def feed(self, text: str) -> str:
        if self.stopped is not None:
            return ""
        self._buf += text
        if not self._lead_checked:
            lead = self._buf.lstrip().lower()
            if MESSAGE_MARKER.startswith(lead):
                return ""  # still undecided: "mess…"
            if lead.startswith(MESSAGE_MARKER):
                self._buf = self._buf.lstrip()[len(MESSAGE_MARKER) :].lstrip()
                if not self._buf:
                    return ""
            self._lead_checked = True
        hold = self._check()
        if self.stopped is not None:
            return ""
        return self._emit(hold)

    def finish(self) -> str:
        """The text still held back once generation ended (nothing if the guard stopped it)."""
        if self.stopped is not None:
            return ""
        if not self._lead_checked and MESSAGE_MARKER.startswith(self._buf.lstrip().lower()):
            return ""  # the whole answer was "message:" (or part of it)
        tail = self._buf[self._sentence_start :]
        if not self._in_code(self._sentence_start) and self._is_repeat(_norm(tail)):
            self._cut(self._sentence_start, "repeat")
            return self._emit(len(self._buf))
        return self._emit(len(self._buf))

    def _emit(self, end: int) -> str:
        end = max(end, self._emitted)
        out = self._buf[self._emitted : end]
        self._emitted = end
        return out

    def _cut(self, at: int, why: str) -> None:
        self._buf = self._buf[: max(at, self._emitted)]
        self.stopped = why

    def _is_repeat(self, norm: str) -> bool:
        return (
            self.repeat_limit > 0
            and len(norm.split()) >= MIN_SENTENCE_WORDS
            and self._counts[norm] + 1 >= self.repeat_limit
        )

    def _check(self) -> int:
        """Update the state with the new text; return where sending must pause (or len of the buffer)."""
        hold = len(self._buf)
        # Sentences completed by the new text.
        for match in _SENTENCE_END.finditer(self._buf, max(self._scanned, self._sentence_start)):
            end = match.end()
            norm = _norm(self._buf[self._sentence_start : end])
            if self._in_code(self._sentence_start):
                norm = ""  # code repeats lines legitimately
            if self._is_repeat(norm):
                self._cut(self._sentence_start, "repeat")
                return 0
            if len(norm.split()) >= MIN_SENTENCE_WORDS:
                self._counts[norm] += 1
            self._sentence_start = end
        self._scanned = max(len(self._buf) - 1, 0)  # a "." at the very end is decided by what follows
        # The sentence being written: held while it may end as a repeat.
        partial = _norm(self._buf[self._sentence_start :])
        if self.repeat_limit > 0 and partial and not self._in_code(self._sentence_start):
            limit = self.repeat_limit - 1
            if any(n.startswith(partial) for n, c in self._counts.items() if c >= limit):
                hold = min(hold, self._sentence_start)
        # The line being written: held while it may be the internal call syntax.
        if self.block_calls:
            # Every line not sent whole yet (a held line may have been ended by the new text).
            line_start = self._buf.rfind("\n", 0, self._emitted) + 1
            while True:
                end = self._buf.find("\n", line_start)
                compact = "".join(self._buf[line_start : len(self._buf) if end < 0 else end].split()).lower()
                if compact and any(compact.startswith(m) for m in self._line_markers):
                    self._cut(line_start, "call")
                    return 0
                if end < 0:
                    break
                line_start = end + 1
            if compact and any(m.startswith(compact) for m in self._line_markers):
                hold = min(hold, line_start)  # the open line may still become the call syntax
            inline = self._inline_marker(max(self._emitted, line_start))
            if inline is not None:
                at, whole = inline
                if whole:
                    self._cut(at, "call")
                    return 0
                hold = min(hold, at)
        if self.repeat_limit > 0 and not self._in_code(len(self._buf)):
            loop = self._loop_at()
            if loop is not None:
                self._cut(loop, "repeat")
                return 0
        return hold

    def _inline_marker(self, start: int) -> tuple[int, bool] | None:
        """The first place from `start` where the call syntax begins mid-line: (where, whether whole)."""
        for at in range(start, len(self._buf)):
            char = self._buf[at].lower()
            if char not in "c{" or (char == "c" and at > 0 and self._buf[at - 1].isalnum()):
                continue
            compact = "".join(self._buf[at : at + 120].split()).lower()
            for marker in self._inline_markers:
                if compact.startswith(marker):
                    return at, True
                if marker.startswith(compact):
                    return at, False
        return None

    def _in_code(self, at: int) -> bool:
        """Whether `at` is inside a fenced code block (an odd number of fences before it)."""
        return self._buf.count("```", 0, at) % 2 == 1

    def _loop_at(self) -> int | None:
        """Where the second copy of a block of words repeated back to back for LOOP_WORDS words starts."""
        tail_from = max(0, len(self._buf) - 40 * LOOP_WORDS)
        words = [(m.start(), m.group()) for m in _WORD.finditer(self._buf, tail_from)]
        if not words:
            return None
        # A long word made of one short piece repeated ("_h_h_h_h…").
        last = words[-1][1]
        for size in range(1, 5):
            piece = last[-size:]
            if len(last) >= size * 24 and any(c.isalnum() for c in piece) and last[-size * 24 :] == piece * 24:
                return words[-1][0] + len(last) - size * 24 + size
        if len(words) < LOOP_WORDS:
            return None
        texts = [w for _, w in words]
        for size in range(1, 9):
            copies = -(-LOOP_WORDS // size)
            span = size * copies
            if len(texts) < span:
                continue
            tail = texts[-span:]
            if all(tail[i] == tail[i % size] for i in range(span)):
                # Walk back to the first copy of the block.
                start = len(texts) - span
                while start - size >= 0 and texts[start - size : start] == tail[:size]:
                    start -= size
                return words[start + size][0]
        return None
