"""Citations: markers the model writes (`【0:2†moby.txt】`) become `file_citation` annotations, and
links to files the run's code wrote (`sandbox:/mnt/data/out.csv`) become `file_path` annotations.

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
SCHEME = "sandbox:"
LINK = "sandbox:/mnt/data/"
LINK_END = re.compile(r"[\s)\]\"'<>`]")
MAX_LINK = 300

# (call index, result index) → file id, or None when the marker names no real result.
Resolver = Callable[[int, int], str | None]
# path under /mnt/data → file id of the file the run's code wrote there, or None.
PathResolver = Callable[[str], str | None]


def _no_paths(path: str) -> str | None:
    return None


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
    resolve_path: PathResolver = _no_paths
    sent: int = 0  # code points already released
    annotations: list[dict[str, Any]] = field(default_factory=list)
    _held: str = ""

    def feed(self, text: str) -> list[tuple[str, dict[str, Any] | None]]:
        self._held += text
        out: list[tuple[str, dict[str, Any] | None]] = []
        while self._held:
            start = self._next_special()
            if start < 0:
                out.append(self._release(len(self._held)))
                break
            if start > 0:
                out.append(self._release(start))
                continue
            if not self._held.startswith(OPEN):
                if len(self._held) < len(SCHEME):
                    break  # maybe the start of a link: wait for more text
                link = LINK_END.search(self._held)
                if link is None:
                    if len(self._held) > MAX_LINK:
                        out.append(self._release(1))
                        continue
                    break
                out.append(self._link(link.start()))
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
        out = [self._link(len(self._held))] if self._held.startswith(LINK) else []
        rest, self._held = self._held, ""
        self.sent += len(rest)
        return [piece for piece in out if piece[0]] + ([(rest, None)] if rest else [])

    def _next_special(self) -> int:
        """Where a marker or a `sandbox:` link may start (a partial `sandbox:` at the end counts)."""
        found = [i for i in (self._held.find(OPEN), self._held.find(SCHEME)) if i >= 0]
        for k in range(min(len(SCHEME) - 1, len(self._held)), 0, -1):
            if SCHEME.startswith(self._held[-k:]):
                found.append(len(self._held) - k)
                break
        return min(found) if found else -1

    def _link(self, end: int) -> tuple[str, dict[str, Any] | None]:
        """Release a `sandbox:` link ending at `end` (a sentence's final punctuation is not part of it)."""
        text = self._held[:end].rstrip(".,;:!?")
        file_id = self.resolve_path(text[len(LINK) :]) if text.startswith(LINK) and len(text) > len(LINK) else None
        if file_id is None:
            return self._release(max(1, len(text)))
        note = {
            "type": "file_path",
            "text": text,
            "start_index": self.sent,
            "end_index": self.sent + len(text),
            "file_path": {"file_id": file_id},
        }
        self.annotations.append(note)
        return self._release(len(text))[0], note

    def _release(self, n: int) -> tuple[str, dict[str, Any] | None]:
        piece, self._held = self._held[:n], self._held[n:]
        self.sent += len(piece)
        return piece, None
