"""file_search citations: markers the model writes (`【0:2†moby.txt】`) become `file_citation` annotations.

The model sees each search result introduced by a marker `【{call}:{result}†{filename}】` (call =
the run's n-th file_search call, result = the result's rank) and is asked to cite with it. A marker
in the answer that names a real result becomes an annotation whose `start_index`/`end_index` are
code-point offsets into the message text. Streaming holds back a possible marker until it closes,
so each one is sent whole, in one delta, together with its annotation (spec §6.3, §7).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKER = re.compile(r"【(\d+):(\d+)†([^】]{0,200})】")
OPEN, CLOSE = "【", "】"
MAX_MARKER = 240  # a longer "marker" is plain text

# (call index, result index) → file id, or None when the marker names no real result.
Resolver = Callable[[int, int], str | None]


def marker(call: int, result: int, filename: str) -> str:
    return f"{OPEN}{call}:{result}†{filename}{CLOSE}"


def annotation(text: str, start: int, file_id: str) -> dict[str, Any]:
    return {
        "type": "file_citation",
        "text": text,
        "start_index": start,
        "end_index": start + len(text),
        "file_citation": {"file_id": file_id},
    }


def annotate(text: str, resolve: Resolver) -> list[dict[str, Any]]:
    """Every valid marker of a finished text, in order."""
    found = []
    for match in MARKER.finditer(text):
        file_id = resolve(int(match.group(1)), int(match.group(2)))
        if file_id is not None:
            found.append(annotation(match.group(0), match.start(), file_id))
    return found


@dataclass
class CitationStream:
    """Feeds streamed text; yields (fragment, annotation or None) pieces safe to send as deltas."""

    resolve: Resolver
    sent: int = 0  # code points already released
    annotations: list[dict[str, Any]] = field(default_factory=list)
    _held: str = ""

    def feed(self, text: str) -> list[tuple[str, dict[str, Any] | None]]:
        self._held += text
        out: list[tuple[str, dict[str, Any] | None]] = []
        while self._held:
            start = self._held.find(OPEN)
            if start < 0:
                out.append(self._release(len(self._held)))
                break
            if start > 0:
                out.append(self._release(start))
                continue
            end = self._held.find(CLOSE)
            if end < 0:
                if len(self._held) > MAX_MARKER:
                    out.append(self._release(1))  # not a marker after all
                    continue
                break  # wait for more text
            candidate = self._held[: end + 1]
            match = MARKER.fullmatch(candidate)
            file_id = self.resolve(int(match.group(1)), int(match.group(2))) if match else None
            if file_id is None:
                out.append(self._release(end + 1))
                continue
            note = annotation(candidate, self.sent, file_id)
            self.annotations.append(note)
            out.append((self._release(end + 1)[0], note))
        return [piece for piece in out if piece[0]]

    def flush(self) -> list[tuple[str, dict[str, Any] | None]]:
        rest, self._held = self._held, ""
        self.sent += len(rest)
        return [(rest, None)] if rest else []

    def _release(self, n: int) -> tuple[str, dict[str, Any] | None]:
        piece, self._held = self._held[:n], self._held[n:]
        self.sent += len(piece)
        return piece, None
