"""code_interpreter sandbox: cell latency, session start, and memory per idle session.

    python bench/bench_sandbox.py [--cells 200] [--repeat 10] [--sessions 4] [--reserve-gib 4]
                                  [--python PATH] [--baseline bench/results/OLD.json]

In process, no API server: `assistd.sandbox.manager.SessionManager` as the server runs it (bwrap,
seccomp, a uid per session, memory and pids cgroups, 1 GiB / 256 pids per session), needing root and
bubblewrap. The sandbox Python is `--python` (default: $ASSISTD_SANDBOX_PYTHON, else the tests'
~/.cache/assistd-tests/sandbox-python; built with `assistd.sandbox.environment.build` if missing).

Measured (times are from `await manager.execute(...)` to its result, in ms):
  warm cell       `1+1` in a live session, `--cells` times (after 10 unmeasured)
  cold start      the first `1+1` of a new session with no warm pool (kernel launch + cell),
                  `--repeat` sessions, each closed before the next
  pooled start    the same with a warm pool of one: a new session adopts the pooled kernel; before
                  each sample the pool is refilled and the machine left alone for a moment
  import          `import pandas, matplotlib.pyplot` as the first cell after a session's `1+1`,
                  `--repeat` fresh sessions
  plot            `plt.plot(...); plt.show()` round trip: the first plot of each of those fresh
                  sessions, and `--repeat` later plots in one session (a PNG comes back each time)
  memory          `--sessions` idle sessions side by side, once bare (after `1+1`) and once after
                  importing numpy, pandas and matplotlib and drawing one plot: per session, the
                  kernel process tree's RSS and PSS (/proc/<pid>/smaps_rollup, so shared library
                  pages are split between the kernels) and the memory cgroup's charge (usage, and
                  the anonymous `rss` from memory.stat). "Sessions in N GiB" divides the machine's
                  RAM less `--reserve-gib` for the server, its database and the OS by the loaded
                  session's PSS.

Results are printed as markdown and written to bench/results/sandbox-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_output_args,
    fmt,
    heading,
    load_baseline,
    loadavg,
    machine,
    ratio,
    result_head,
    settings,
    summary,
    versions,
    warn_if_loaded,
    write_result,
)

from assistd.sandbox import environment  # noqa: E402
from assistd.sandbox.limits import Limits  # noqa: E402
from assistd.sandbox.manager import SandboxConfig, SessionManager  # noqa: E402

PACKAGES = ["assistd", "jupyter_client", "pyzmq"]
PNG = b"\x89PNG\r\n\x1a\n"
LIMITS = Limits(memory_bytes=1 << 30, pids=256, file_bytes=100 << 20, cpu_seconds=3600)
IMPORTS = "import numpy, pandas, matplotlib.pyplot as plt"
PLOT = "plt.plot([1, 3, 2, 4]); plt.title('bench'); plt.show()"
AIMS = {"warm_cell_p50_ms": 50.0, "cold_start_p50_ms": 2000.0}


def default_python() -> Path:
    env = os.environ.get("ASSISTD_SANDBOX_PYTHON")
    return Path(env) if env else Path.home() / ".cache" / "assistd-tests" / "sandbox-python"


class Bench:
    def __init__(self, root: Path, python: Path) -> None:
        self.root = root
        self.python = python
        self.count = 0

    def manager(self, name: str, pool_size: int) -> SessionManager:
        config = SandboxConfig(
            root=self.root / name, python=self.python, pool_size=pool_size, limits=LIMITS, cell_timeout=120
        )
        m = SessionManager(config)
        reason = m.unavailable()
        if reason is not None:
            raise SystemExit(f"bench_sandbox: the sandbox is unavailable: {reason}")
        return m

    def key(self) -> str:
        self.count += 1
        return f"thread_bench_{self.count}"


async def timed(m: SessionManager, key: str, code: str, check: Callable[[Any], bool] | None = None) -> float:
    started = time.perf_counter()
    result = await m.execute(key, code, [])
    elapsed = (time.perf_counter() - started) * 1000
    if result.status != "ok" or (check is not None and not check(result)):
        raise RuntimeError(f"cell {code!r} ended {result.status}: {result.logs[-500:]} {result.notice}")
    return elapsed


async def wait_pool(m: SessionManager, size: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(m._pool) < size:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm pool did not fill")
        await asyncio.sleep(0.02)


async def latency(bench: Bench, cells: int, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = bench.manager("latency", pool_size=0)
    await m.start()
    try:
        # cold: a new session per sample, nothing pooled
        cold = []
        for _ in range(repeat):
            key = bench.key()
            cold.append(await timed(m, key, "1+1"))
            await m.close(key, remove_files=True)
        out["cold_start"] = summary(cold)

        # warm cell round trip, and the plot round trips, in one live session
        key = bench.key()
        await timed(m, key, "1+1")
        for _ in range(10):
            await timed(m, key, "1+1")
        out["warm_cell"] = summary([await timed(m, key, "1+1") for _ in range(cells)])
        await timed(m, key, IMPORTS)

        def png(result: Any) -> bool:
            return len(result.images) == 1 and result.images[0].startswith(PNG)

        await timed(m, key, PLOT, png)
        out["plot"] = summary([await timed(m, key, PLOT, png) for _ in range(repeat)])
        await m.close(key, remove_files=True)

        # the first scientific import of a fresh session, then its first plot
        imports, first_plots = [], []
        for _ in range(repeat):
            key = bench.key()
            await timed(m, key, "1+1")
            imports.append(await timed(m, key, "import pandas, matplotlib.pyplot as plt"))
            first_plots.append(await timed(m, key, PLOT, png))
            await m.close(key, remove_files=True)
        out["first_import"] = summary(imports)
        out["first_plot"] = summary(first_plots)
    finally:
        await m.aclose()

    # pooled: a new session adopts a ready kernel
    m = bench.manager("pooled", pool_size=1)
    await m.start()
    try:
        pooled = []
        for _ in range(repeat):
            await wait_pool(m, 1)
            await asyncio.sleep(0.5)  # let the new kernel settle (its start is CPU-heavy)
            key = bench.key()
            pooled.append(await timed(m, key, "1+1"))
            await m.close(key, remove_files=True)
        out["pooled_start"] = summary(pooled)
    finally:
        await m.aclose()
    return out


def _pids(procs_file: Path) -> list[int]:
    try:
        return [int(p) for p in procs_file.read_text().split()]
    except OSError:
        return []


def _rollup(pid: int) -> dict[str, int]:
    """Rss and Pss in KiB from /proc/<pid>/smaps_rollup."""
    found = {"Rss": 0, "Pss": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def session_memory(m: SessionManager, key: str) -> dict[str, float]:
    """MiB: the kernel process tree's RSS and PSS (every process in the session's pids cgroup),
    and the memory cgroup's usage and anonymous rss."""
    cgroups = m._sessions[key].slot.kernel.cgroups
    if cgroups is None:
        raise RuntimeError("no cgroups: memory per session cannot be attributed")
    memory_dir = next(d for d in cgroups.dirs if (d / "memory.usage_in_bytes").exists())
    pids_dir = next(d for d in cgroups.dirs if (d / "pids.max").exists())
    rss = pss = 0
    for pid in _pids(pids_dir / "cgroup.procs"):
        rollup = _rollup(pid)
        rss += rollup["Rss"]
        pss += rollup["Pss"]
    stat = dict(line.split() for line in (memory_dir / "memory.stat").read_text().splitlines())
    return {
        "rss_mib": rss / 1024,
        "pss_mib": pss / 1024,
        "cgroup_usage_mib": int((memory_dir / "memory.usage_in_bytes").read_text()) / 2**20,
        "cgroup_anon_mib": int(stat.get("total_rss", stat.get("rss", "0"))) / 2**20,
    }


async def memory(bench: Bench, sessions: int) -> dict[str, Any]:
    m = bench.manager("memory", pool_size=0)
    await m.start()
    try:
        keys = [bench.key() for _ in range(sessions)]
        for key in keys:
            await timed(m, key, "1+1")
        await asyncio.sleep(1)
        bare = [session_memory(m, key) for key in keys]
        for key in keys:
            await timed(m, key, f"{IMPORTS}\n{PLOT}")
        await asyncio.sleep(1)
        loaded = [session_memory(m, key) for key in keys]
    finally:
        await m.aclose()

    def mean(rows: list[dict[str, float]]) -> dict[str, float]:
        return {name: round(statistics.mean(row[name] for row in rows), 1) for name in rows[0]}

    return {
        "sessions": sessions,
        "bare": mean(bare),
        "loaded": mean(loaded),
        "samples": {"bare": bare, "loaded": loaded},
    }


def total_ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def report(result: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    lat, mem = result["latency"], result["memory"]
    old_lat = (baseline or {}).get("latency", {})
    lines = [heading("code_interpreter sandbox (bwrap, in process)", result), ""]
    lines.append("| measure | n | p50 ms | p99 ms | min ms | max ms | aim | vs baseline (p50) |")
    lines.append("|---|---:|---:|---:|---:|---:|---|---:|")
    rows = [
        ("warm cell `1+1`", "warm_cell", f"p50 ≤ {AIMS['warm_cell_p50_ms']:g} ms"),
        ("cold start (new session, no pool), first `1+1`", "cold_start", f"p50 ≤ {AIMS['cold_start_p50_ms']:g} ms"),
        ("pooled start (new session adopts warm kernel), first `1+1`", "pooled_start", ""),
        ("first `import pandas, matplotlib.pyplot`", "first_import", ""),
        ("first plot of a session (`plt.show()` → PNG)", "first_plot", ""),
        ("later plots", "plot", ""),
    ]
    for label, name, aim in rows:
        s = lat[name]
        before = old_lat.get(name, {}).get("p50")
        met = ""
        if aim:
            limit = AIMS[f"{name}_p50_ms"]
            met = f"{aim} {'✓' if s['p50'] <= limit else '✗'}"
        lines.append(
            f"| {label} | {s['n']} | {fmt(s['p50'], 1)} | {fmt(s['p99'], 1)} | {fmt(s['min'], 1)} "
            f"| {fmt(s['max'], 1)} | {met} | {ratio(s['p50'], before)} |"
        )
    lines += ["", f"Memory per idle session (mean of {mem['sessions']} side by side, MiB):", ""]
    lines.append("| session | RSS (process tree) | PSS (process tree) | cgroup usage | cgroup anon rss |")
    lines.append("|---|---:|---:|---:|---:|")
    for label, name in (("bare (after `1+1`)", "bare"), ("numpy + pandas + matplotlib, one plot", "loaded")):
        row = mem[name]
        lines.append(
            f"| {label} | {fmt(row['rss_mib'], 1)} | {fmt(row['pss_mib'], 1)} | {fmt(row['cgroup_usage_mib'], 1)} "
            f"| {fmt(row['cgroup_anon_mib'], 1)} |"
        )
    fit = result["fit"]
    lines += [
        "",
        f"Sessions that fit: ({fit['ram_gib']:.1f} GiB RAM − {fit['reserve_gib']:g} GiB for the server, database "
        f"and OS) / {fit['per_session_mib']:.0f} MiB (loaded session's PSS) ≈ **{fit['sessions']:,} idle sessions**; "
        f"bare kernels: ≈ {fit['sessions_bare']:,}. A session that computes needs more (its limit is "
        f"{LIMITS.memory_bytes >> 20} MiB), and CPU, not memory, bounds how many can run cells at once "
        f"(`max_running` = 2 on this machine).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200, help="warm `1+1` cells to time")
    parser.add_argument("--repeat", type=int, default=10, help="samples for starts, imports and plots")
    parser.add_argument("--sessions", type=int, default=4, help="idle sessions side by side for memory")
    parser.add_argument("--reserve-gib", type=float, default=4.0, help="RAM kept for the server, DB and OS")
    parser.add_argument("--python", type=Path, default=default_python(), help="the sandbox Python environment")
    add_output_args(parser, "sandbox")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("bwrap") is None:
        parser.error("needs root and bubblewrap (the sandbox's priv mode)")
    environment.build(args.python, quiet=True)
    load_before = loadavg()
    warn_if_loaded("bench_sandbox", load_before)
    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="assistd-bench-sandbox-"))
    try:
        bench = Bench(root, args.python)
        lat = asyncio.run(latency(bench, args.cells, args.repeat))
        mem = asyncio.run(memory(bench, args.sessions))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ram = total_ram_gib()
    budget_mib = (ram - args.reserve_gib) * 1024
    result = {
        **result_head("sandbox", started, machine(load_before), versions(PACKAGES)),
        "settings": {**settings(args), "python": str(args.python)},
        "latency": lat,
        "memory": mem,
        "fit": {
            "ram_gib": round(ram, 2),
            "reserve_gib": args.reserve_gib,
            "per_session_mib": mem["loaded"]["pss_mib"],
            "sessions": int(budget_mib // mem["loaded"]["pss_mib"]),
            "sessions_bare": int(budget_mib // mem["bare"]["pss_mib"]),
        },
    }
    print(report(result, load_baseline(args.baseline)))
    output = write_result(result, args.output, started)
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
