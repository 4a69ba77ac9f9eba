"""Citations on any model: precision and recall of sentence attribution (tools/attribution.py).

    python bench/bench_citations.py                          # SciFact from ../shared/data/beir-scifact
    python bench/bench_citations.py --beir /data/scifact --claims 60

The labelled set, where each answer sentence's supporting result is known (or known to be absent):

- SciFact (read in place, never copied): each test claim whose rationale says SUPPORT is an answer
  sentence; the "search results" are its supporting abstract(s) plus the 4 abstracts of the corpus
  that share the most content words with it (hard distractors, ranked by word overlap). The claim must
  be cited to a supporting abstract. The same claim against the 4 distractors only is an unsupported
  sentence: it must stay uncited.
- A hand-written set (below): short documents and answers mixing supported sentences (paraphrased),
  sentences about something else, greetings and "I don't know".

For each threshold: precision = citations to a right result / citations; recall = supported sentences
cited to a right result / supported sentences; false cites = unsupported sentences cited / unsupported.
Time per sentence is `Attributor.best` with the bundled MiniLM: for an answer's first sentence (the
results' passages it needs are embedded then, as in a run) and for a later one (those are cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from assistd.retrieval.embedding import MiniLMEmbedder
from assistd.tools.attribution import DEFAULT_THRESHOLD, Attributor, Source, words

DEFAULT_BEIR = Path(__file__).resolve().parents[1] / ".." / ".." / "shared" / "data" / "beir-scifact"
THRESHOLDS = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70]

HAND_DOCS = {
    "tides.txt": (
        "Tides are caused mainly by the gravitational pull of the Moon on the oceans. The Sun also raises "
        "tides, about half as strong as the Moon's. When the Sun and Moon align, at new and full moon, the "
        "tidal range is largest; these are called spring tides. Neap tides, with the smallest range, happen "
        "at the first and third quarter moons."
    ),
    "sourdough.txt": (
        "A sourdough starter is a mixture of flour and water colonised by wild yeasts and lactic acid "
        "bacteria. Feed the starter twice a day with equal weights of flour and water. A healthy starter "
        "doubles in volume within six to eight hours of feeding. Bake when the dough has risen by about half, "
        "after a cold proof of twelve hours in the refrigerator."
    ),
    "policy.txt": (
        "Employees may work remotely up to three days per week with their manager's approval. Equipment "
        "for home offices is reimbursed up to 500 euros per year. Travel must be booked through the company "
        "portal at least fourteen days in advance. Expense reports are due by the fifth day of the following "
        "month."
    ),
    "volcano.txt": (
        "Mount Etna, on the east coast of Sicily, is one of the most active volcanoes in the world. Its "
        "eruptions are mostly effusive, producing lava flows rather than explosive ash columns. The volcano "
        "rises about 3,300 metres and its height changes with each summit eruption."
    ),
}
# (sentence, the file that supports it or None)
HAND_ANSWERS: list[tuple[str, str | None]] = [
    ("The Moon's gravity is the main cause of tides in the oceans.", "tides.txt"),
    ("Spring tides, with the largest range, occur at new and full moon when the Sun and Moon line up.", "tides.txt"),
    ("The Sun's tidal effect is roughly half that of the Moon.", "tides.txt"),
    ("Neap tides occur at the quarter moons and have the smallest tidal range.", "tides.txt"),
    ("You should feed your sourdough starter twice daily with equal amounts of flour and water.", "sourdough.txt"),
    ("A healthy starter should double in volume six to eight hours after a feeding.", "sourdough.txt"),
    ("The dough gets a cold proof of twelve hours in the fridge before baking.", "sourdough.txt"),
    ("A starter is flour and water colonised by wild yeast and lactic acid bacteria.", "sourdough.txt"),
    ("You can work from home up to three days a week if your manager approves.", "policy.txt"),
    ("Home office equipment is reimbursed up to 500 euros each year.", "policy.txt"),
    ("Book travel through the company portal at least fourteen days ahead.", "policy.txt"),
    ("Expense reports must be submitted by the fifth of the next month.", "policy.txt"),
    ("Mount Etna is on the east coast of Sicily and is among the world's most active volcanoes.", "volcano.txt"),
    ("Etna's eruptions mostly produce lava flows rather than explosive ash columns.", "volcano.txt"),
    ("Hello! I'd be happy to help you with that.", None),
    ("I don't know.", None),
    ("I could not find that information in the files you provided.", None),
    ("Let me know if you have any other questions!", None),
    ("Great question.", None),
    ("The capital of France is Paris.", None),
    ("Python is a popular programming language for data science.", None),
    ("The stock market fell sharply on Tuesday as investors worried about interest rates.", None),
    ("Tidal energy is expensive to build compared with offshore wind farms.", None),
    ("Sourdough bread was first made in ancient Egypt around 1500 BC.", None),
    ("Employees receive twenty-five days of paid vacation per year.", None),
    ("The company portal was redesigned last year by an outside agency.", None),
    ("Mount Vesuvius destroyed Pompeii in 79 AD.", None),
    ("Remote work improves productivity according to many studies.", None),
    ("Yeast needs sugar and warmth to produce carbon dioxide.", None),
    ("Full moon nights are brighter than new moon nights.", None),
]


@dataclass
class Case:
    sentence: str
    results: list[Source]
    right: set[str]  # file ids that support the sentence (empty: it must stay uncited)
    set_name: str


def scifact_cases(beir: Path, limit: int) -> list[Case]:
    corpus: dict[str, str] = {}
    with (beir / "corpus.jsonl").open() as f:
        for line in f:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc.get('title', '')}. {doc['text']}".strip()
    doc_words = {doc_id: words(text) for doc_id, text in corpus.items()}
    cases: list[Case] = []
    with (beir / "queries.jsonl").open() as f:
        claims = [json.loads(line) for line in f]
    for claim in claims:
        gold = [d for d, ev in claim["metadata"].items() if d in corpus and any(e["label"] == "SUPPORT" for e in ev)]
        if not gold:
            continue
        wanted = words(claim["text"])
        overlap = sorted(
            ((len(wanted & w), d) for d, w in doc_words.items() if d not in claim["metadata"]), reverse=True
        )
        distractors = [d for _, d in overlap[:4]]

        def source(i: int, doc_id: str) -> Source:
            return Source(0, i, f"{doc_id}.txt", doc_id, corpus[doc_id])

        with_gold = [source(i, d) for i, d in enumerate(gold + distractors)]
        cases.append(Case(claim["text"], with_gold, set(gold), "scifact"))
        cases.append(Case(claim["text"], [source(i, d) for i, d in enumerate(distractors)], set(), "scifact"))
        if len(cases) >= 2 * limit:
            break
    return cases


def hand_cases() -> list[Case]:
    results = [Source(0, i, name, name, text) for i, (name, text) in enumerate(HAND_DOCS.items())]
    return [Case(s, results, {f} if f else set(), "hand-written") for s, f in HAND_ANSWERS]


async def score(cases: list[Case], embedder: MiniLMEmbedder) -> list[tuple[Case, str | None, float, float, float]]:
    """Each case's best result (file id or None) with its score, and the time it took."""
    out = []
    for case in cases:
        attributor = Attributor(case.results, embedder)
        start = time.perf_counter()
        best = await attributor.best(case.sentence)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        await attributor.best(case.sentence)  # the results' passages are embedded now: a later sentence's cost
        warm = time.perf_counter() - start
        out.append((case, best.source.file_id if best else None, best.score if best else 0.0, cold, warm))
    return out


def table(scored: list[tuple[Case, str | None, float, float, float]], set_name: str) -> list[str]:
    rows = [s for s in scored if set_name == "all" or s[0].set_name == set_name]
    supported = [r for r in rows if r[0].right]
    unsupported = [r for r in rows if not r[0].right]
    lines = [
        f"\n{set_name}: {len(supported)} supported sentences, {len(unsupported)} unsupported\n",
        "| threshold | citations | precision | recall | false cites (unsupported) |",
        "|---|---|---|---|---|",
    ]
    for t in THRESHOLDS:
        cited = [r for r in rows if r[1] is not None and r[2] >= t]
        right = [r for r in cited if r[1] in r[0].right]
        false = [r for r in unsupported if r[1] is not None and r[2] >= t]
        mark = " (default)" if abs(t - DEFAULT_THRESHOLD) < 1e-9 else ""
        precision = len(right) / len(cited) if cited else float("nan")
        recall = len(right) / len(supported) if supported else float("nan")
        false_rate = len(false) / len(unsupported) if unsupported else float("nan")
        lines.append(
            f"| {t:.2f}{mark} | {len(cited)} | {precision:.3f} | {recall:.3f} | "
            f"{len(false)}/{len(unsupported)} ({false_rate:.3f}) |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="a BEIR SciFact folder (read in place)")
    parser.add_argument("--claims", type=int, default=124, help="SciFact claims with a SUPPORT rationale to use")
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    embedder.load()
    cases = hand_cases()
    if (args.beir / "corpus.jsonl").is_file():
        cases += scifact_cases(args.beir, args.claims)
    else:
        print(f"(no SciFact at {args.beir}: the hand-written set only)")
    scored = asyncio.run(score(cases, embedder))
    for name in ("hand-written", "scifact", "all"):
        print("\n".join(table(scored, name)))
    print("\nAttribution time per sentence, ms (MiniLM int8; sentences with a candidate passage):\n")
    print("| | sentences | median | p95 | max |\n|---|---|---|---|---|")
    for label, column in (("first sentence (passages embedded)", 3), ("later sentence (passages cached)", 4)):
        times = sorted(s[column] * 1000 for s in scored if s[1] is not None)
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"| {label} | {len(times)} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} |")


if __name__ == "__main__":
    main()
