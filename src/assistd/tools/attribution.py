"""Citations on any model: an answer's sentences attributed to the file_search results that support them.

Most open models never write the `【call:result†file】` markers the results are shown under. In the
`auto` mode (ASSISTD_CITATIONS, docs/file-search.md "Citations on any model"), when a run's answer
carries no valid marker, each finished sentence is compared with the run's search results: passages
of 1–2 sentences of each result that share enough of the sentence's content words are embedded with the vector
stores' embedder, and the sentence's support by a result is `LEXICAL_WEIGHT * overlap + (1 -
LEXICAL_WEIGHT) * cosine` for its best passage, where `overlap` is the share of the sentence's
content words found in the passage, each word weighted by its rarity among the results' passages
(a word every passage has says little; a word no passage has counts against the sentence). When the best
result's support reaches the threshold, the result's marker is inserted right after the sentence
(after its final punctuation, before the following space or line break, where OpenAI's models put
them) and becomes a `file_citation` annotation, streamed in one delta with its annotation as a
model-written marker is. Unsupported sentences (greetings, "I don't know", sentences about
something else) stay uncited. Once the model writes a valid marker itself, no more are added.

`model` keeps only the model's markers; `off` emits no file_citation annotation and removes the
model's valid markers from the text (file_path links to files the run's code wrote are kept).
bench/bench_citations.py measures precision, recall and time per sentence; it chose the threshold.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from assistd.retrieval.embedding import EmbeddingError
from assistd.tools.base import ToolCall
from assistd.tools.citations import CitationStream, annotation, marker

if TYPE_CHECKING:
    from assistd.retrieval.embedding import Embedder

Mode = Literal["model", "auto", "off"]
Piece = tuple[str, dict[str, Any] | None]

DEFAULT_THRESHOLD = 0.6  # chosen with bench/bench_citations.py (see docs/file-search.md)
LEXICAL_WEIGHT = 0.3
MIN_WORDS = 3  # a sentence with fewer content words is never cited ("Hello!", "I don't know.")
MIN_OVERLAP = 0.2  # a passage sharing less of the sentence's content words (unweighted) is not a candidate
CANDIDATES = 4  # passages embedded per sentence (the best by weighted overlap)
MAX_PASSAGE_CHARS = 1200

WORD = re.compile(r"[^\W_]+", re.UNICODE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n+")
TERMINAL = re.compile(r"[.!?。！？][\"'”’)\]]*$")
ENDINGS = frozenset(".!?。！？\"'”’)]")  # what the last character of a finished sentence may be
_ABBREVIATIONS = "e.g i.e etc vs dr mr mrs ms prof st fig no al cf approx ca jr sr inc ltd co u.s"
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())  # "e.g. this" does not end a sentence
_STOPWORDS = """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing don down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more most my
    myself no nor not of off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves s t ll ve re m d isn doesn didn won based according file files document documents
    text says said say one"""
STOPWORDS = frozenset(_STOPWORDS.split())


def words(text: str) -> set[str]:
    """A text's content words: lower-cased, stopwords dropped, a plural or verb ending removed."""
    out = set()
    for word in WORD.findall(text.lower()):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        out.add(_stem(word))
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]


@dataclass(frozen=True)
class Source:
    """One search result an answer may cite: its marker's numbers, its file, its text."""

    call: int
    result: int
    filename: str
    file_id: str
    text: str

    @property
    def marker(self) -> str:
        return marker(self.call, self.result, self.filename)


@dataclass(frozen=True)
class Support:
    source: Source
    score: float
    overlap: float
    cosine: float


@dataclass
class _Passage:
    source: Source
    text: str
    words: set[str]


def sources(calls: Sequence[ToolCall]) -> list[Source]:
    """Every result of the run's file_search calls (in call order: call index = the marker's first number)."""
    found = []
    for c, call in enumerate(calls):
        for r, result in enumerate(call.details.get("results") or []):
            text = "".join(part.get("text", "") for part in result.get("content") or [])
            if text.strip():
                found.append(Source(c, r, str(result["file_name"]), str(result["file_id"]), text))
    return found


class Attributor:
    """Finds the search result that best supports a sentence, if any supports it well enough."""

    def __init__(self, results: Sequence[Source], embedder: Embedder | None, threshold: float = DEFAULT_THRESHOLD):
        self.threshold = threshold
        self.embedder = embedder
        self.results = list(results)
        self._passages: list[_Passage] | None = None  # split on first use: most model calls never need them
        self._frequency: Counter[str] = Counter()  # passages with each word
        self._vectors: dict[str, Any] = {}  # passage text → its embedding

    def __bool__(self) -> bool:
        return bool(self.results)

    @property
    def passages(self) -> list[_Passage]:
        if self._passages is None:
            self._passages = [p for source in self.results for p in _passages(source)]
            self._frequency = Counter(w for p in self._passages for w in p.words)
        return self._passages

    async def support(self, sentence: str) -> Support | None:
        """The best-supporting result and its score, when the score reaches the threshold."""
        best = await self.best(sentence)
        return best if best is not None and best.score >= self.threshold else None

    async def best(self, sentence: str) -> Support | None:
        """The best-supporting result whatever its score (None when no passage shares enough words)."""
        wanted = words(sentence)
        if len(wanted) < MIN_WORDS:
            return None
        passages = self.passages
        rarity = {w: math.log(1 + len(passages) / (1 + self._frequency[w])) for w in wanted}
        total = sum(rarity.values())
        scored = [
            (sum(rarity[w] for w in wanted & p.words) / total, i)
            for i, p in enumerate(passages)
            if len(wanted & p.words) >= MIN_OVERLAP * len(wanted)
        ]
        candidates = sorted(scored, reverse=True)[:CANDIDATES]
        if not candidates:
            return None
        cosines = await self._cosines(sentence, [self.passages[i].text for _, i in candidates])
        best: Support | None = None
        for (overlap, i), cosine in zip(candidates, cosines, strict=True):
            score = LEXICAL_WEIGHT * overlap + (1 - LEXICAL_WEIGHT) * cosine
            if best is None or score > best.score:
                best = Support(self.passages[i].source, score, overlap, cosine)
        return best

    async def _cosines(self, sentence: str, texts: list[str]) -> list[float]:
        """Cosine of the sentence with each passage; without a working embedder, the lexical overlap stands in."""
        if self.embedder is None:
            return [len(words(sentence) & words(t)) / max(1, len(words(sentence))) for t in texts]
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        try:
            vectors = await self.embedder.embed([sentence, *missing])
        except EmbeddingError:
            self.embedder = None
            return await self._cosines(sentence, texts)
        for text, vector in zip(missing, vectors[1:], strict=True):
            self._vectors[text] = vector
        return [float(vectors[0] @ self._vectors[t]) for t in texts]


def _passages(source: Source) -> list[_Passage]:
    """A result's text as passages of one and two consecutive sentences."""
    parts = sentences(source.text)
    texts = list(parts) + [f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False)]
    return [_Passage(source, t[:MAX_PASSAGE_CHARS], words(t)) for t in texts if words(t)]


@dataclass
class AttributedStream:
    """A `CitationStream` whose text may gain markers (`auto`) or lose them (`off`).

    Same contract: `feed`/`flush` return (fragment, annotation or None) pieces to send as deltas, and
    `annotations` holds every annotation with offsets into the text as sent (inserted markers counted).
    """

    inner: CitationStream
    mode: Mode = "auto"
    attributor: Attributor | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0  # code points sent
    model_cited: bool = False  # a valid marker of the model's was seen: add none of ours
    _sentence: str = ""  # the current sentence's text so far (sent already)

    async def feed(self, text: str) -> list[Piece]:
        return await self._pieces(self.inner.feed(text), final=False)

    async def flush(self) -> list[Piece]:
        return await self._pieces(self.inner.flush(), final=True)

    async def _pieces(self, pieces: list[Piece], final: bool) -> list[Piece]:
        out: list[Piece] = []
        for text, note in pieces:
            if note is None:
                out += await self._text(text)
            elif note["type"] == "file_citation" and self.mode == "off":
                continue  # the model's marker is removed with its citation
            else:
                if note["type"] == "file_citation":
                    self.model_cited = True
                out.append(self._send(text, note))
                self._sentence += text
        if final and self._sentence.strip():
            out += await self._end_sentence()
        return [piece for piece in out if piece[0]]

    async def _text(self, text: str) -> list[Piece]:
        """Plain text, split where sentences end so that a marker can follow each."""
        out: list[Piece] = []
        start = 0
        for i, char in enumerate(text):
            if not char.isspace():
                continue
            before = text[i - 1] if i > 0 else self._sentence[-1:]
            if char != "\n" and before not in ENDINGS:
                continue
            sentence = self._sentence + text[start:i]
            if sentence.strip() and (char == "\n" or _ends_sentence(sentence)):
                out.append(self._send(text[start:i], None))
                self._sentence = sentence
                out += await self._end_sentence()
                start = i
        out.append(self._send(text[start:], None))
        self._sentence += text[start:]
        return out

    async def _end_sentence(self) -> list[Piece]:
        sentence, self._sentence = self._sentence.strip(), ""
        if self.mode != "auto" or self.model_cited or not self.attributor:
            return []
        found = await self.attributor.support(sentence)
        if found is None:
            return []
        source = found.source
        return [self._send(source.marker, annotation(source.marker, self.sent, source.file_id))]

    def _send(self, text: str, note: dict[str, Any] | None) -> Piece:
        if note is not None:
            note = {**note, "start_index": self.sent, "end_index": self.sent + len(text)}
            self.annotations.append(note)
        self.sent += len(text)
        return text, note


def _ends_sentence(text: str) -> bool:
    """True when `text` ends a sentence: final punctuation, not after a known abbreviation."""
    stripped = text.rstrip()
    if not TERMINAL.search(stripped):
        return False
    if not stripped.endswith("."):
        return True
    last = stripped.rstrip(".").rsplit(None, 1)[-1].lower() if stripped.rstrip(".") else ""
    return last not in ABBREVIATIONS and not (len(last) == 1 and last.isalpha())
