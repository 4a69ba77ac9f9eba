"""What issue 12's wire fixes cost: exact-integer JSON (items 7) and detaching a deleted vector store (item 2).

    python bench/bench_wire.py                      # both parts, sqlite and postgres
    python bench/bench_wire.py --backends sqlite --objects 1000

Part 1, in process: `assistd.jsonio` (orjson, exact for integers past 64 bits) against plain orjson on
documents the server stores, and the request body pre-check for numbers that cannot be kept.
Part 2, a real `assistd serve` per backend: `DELETE /v1/vector_stores/{id}` among `--objects`
assistants and as many threads (each attached to one of 20 other stores), for a store attached to
none of them and for one attached to 5% of them, which the delete detaches in its transaction.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import BaseModel

from assistd import jsonio
from assistd.api.deps import _needs_exact_check
from assistd.protocol.assistants import AssistantCreate
from assistd.protocol.messages import MessageCreate
from assistd.testing.server import LiveServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Look something up in the catalogue " * 3,
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}, "n": {"type": "integer", "minimum": 1, "maximum": 100}},
                "required": ["q"],
            },
            "strict": False,
        },
    }
    for i in range(8)
]
LINE = "All work and no play makes Jack a dull boy. "
MESSAGE = [{"type": "text", "text": {"value": LINE * 5800, "annotations": []}}]
# What a scan of the text for odd numbers would cost: NUL escapes, NaN, Infinity, long exponents.
SCAN = re.compile(rb"\\u0000|NaN|Infinity|[0-9][eE]\+?[0-9]{3}|[0-9]{300}")
BIG = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "parameters": {"maximum": 2**70, "minimum": -(2**70)}}}]


def per_call_us(fn: Callable[[], Any], budget: float = 0.3) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e6


def _row(name: str, doc: Any) -> str:
    text = orjson.dumps(doc).decode()
    return (
        f"| {name} | {len(text):,} | {per_call_us(lambda: orjson.dumps(doc).decode()):.1f} | "
        f"{per_call_us(lambda: jsonio.to_column(doc)):.1f} | {per_call_us(lambda: orjson.loads(text)):.1f} | "
        f"{per_call_us(lambda: jsonio.from_column(text)):.1f} |"
    )


def _precheck(name: str, model: type[BaseModel], doc: Any) -> str:
    body = json.dumps(doc).encode()
    parse = per_call_us(lambda: model.model_validate_json(body, strict=True))
    check = per_call_us(lambda: _needs_exact_check(body))
    scan = per_call_us(lambda: SCAN.search(body))
    return f"| {name} | {len(body):,} | {parse:.1f} | {check:.1f} | {scan:.1f} |"


def part_one() -> None:
    print("### JSON columns (µs per call, in process)\n")
    # Before: the columns' serializer was orjson.dumps(value).decode() and the deserializer orjson.loads.
    print("| document | bytes | before: write | jsonio.to_column | before: read | jsonio.from_column |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(_row("8 function tools", TOOLS))
    print(_row("256 KB message content", MESSAGE))
    text = jsonio.to_column(BIG)
    print(
        f"| a tool with ±2**70 | {len(text):,} | refused | {per_call_us(lambda: jsonio.to_column(BIG)):.1f} | "
        f"lossy (float) | {per_call_us(lambda: jsonio.from_column(text)):.1f} |"
    )
    print("\n### Request bodies: the check for numbers that cannot be kept (µs per call)\n")
    print("| body | bytes | request parse (pydantic) | check (orjson) | a regex scan, for comparison |")
    print("| --- | --- | --- | --- | --- |")
    print(_precheck("create assistant, 8 tools", AssistantCreate, {"model": "gpt-4o", "tools": TOOLS}))
    print(_precheck("256 KB message", MessageCreate, {"role": "user", "content": LINE * 5800}))
    print()


def part_two(backends: list[str], objects: int) -> None:
    print(f"### Deleting a vector store among {objects:,} assistants and {objects:,} threads (ms)\n")
    print("| backend | attached to | delete p50 | delete max | detached checked |")
    print("| --- | --- | --- | --- | --- |")
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            pg = None
            url = None
            if backend == "postgres":
                from assistd.testing.postgres import TestPostgres

                pg = TestPostgres()
                url = pg.new_database()
            server = LiveServer(Path(tmp) / backend, database_url=url, env={"ASSISTD_LOCAL_ENABLED": "false"}).start()
            try:
                with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer b"}, timeout=60) as c:
                    for attached, rows in _measure(c, objects):
                        print(f"| {backend} | {attached} | {statistics.median(rows):.1f} | {max(rows):.1f} | yes |")
            finally:
                server.stop()
                if pg is not None:
                    pg.close()
    print()


def _measure(c: httpx.Client, objects: int) -> list[tuple[str, list[float]]]:
    others = [c.post("/v1/vector_stores", json={}).json()["id"] for _ in range(20)]
    for i in range(objects):
        resources = {"file_search": {"vector_store_ids": [others[i % 20]]}}
        c.post(
            "/v1/assistants", json={"model": "gpt-4o", "tools": [{"type": "file_search"}], "tool_resources": resources}
        )
        c.post("/v1/threads", json={"tool_resources": resources})
    out = []
    for label, share in (("none", 0), ("5% of each", max(1, objects // 20))):
        timings = []
        for _ in range(5):
            doomed = c.post("/v1/vector_stores", json={}).json()["id"]
            resources = {"file_search": {"vector_store_ids": [doomed]}}
            holders = [
                c.post("/v1/assistants", json={"model": "gpt-4o", "tool_resources": resources}).json()["id"]
                for _ in range(share)
            ]
            threads = [c.post("/v1/threads", json={"tool_resources": resources}).json()["id"] for _ in range(share)]
            start = time.perf_counter()
            assert c.delete(f"/v1/vector_stores/{doomed}").status_code == 200
            timings.append((time.perf_counter() - start) * 1000)
            for asst in holders[:3]:
                assert c.get(f"/v1/assistants/{asst}").json()["tool_resources"]["file_search"]["vector_store_ids"] == []
            for thread in threads[:3]:
                assert c.get(f"/v1/threads/{thread}").json()["tool_resources"]["file_search"]["vector_store_ids"] == []
        out.append((f"{label} ({share} + {share})", timings))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--objects", type=int, default=2000, help="assistants, and as many threads")
    args = parser.parse_args()
    part_one()
    if args.backends:
        part_two(args.backends.split(","), args.objects)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
