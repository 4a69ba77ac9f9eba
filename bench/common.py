"""What the benchmark scripts share: machine facts, results JSON, --baseline, --compare-src, percentiles, processes.

Standard library only, so that importing it costs nothing (bench_local.py's raw worker imports it too).
The scripts run as `python bench/bench_X.py`, which puts this folder first on sys.path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
API_KEY = "sk-bench-0123456789abcdef0123456789abcdef"


# --- machine, versions, git ---------------------------------------------------------------------


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def warn_if_loaded(script: str, load_before: Sequence[float], note: str = "") -> None:
    if load_before[0] > 0.5:
        print(
            f"{script}: warning: load average is {load_before[0]:.2f} before starting; other work on this "
            f"machine will skew the figures{note}",
            file=sys.stderr,
        )


def machine(
    load_before: Sequence[float], load_after: Sequence[float] | None = None, *, with_platform: bool = True
) -> dict[str, Any]:
    """CPUs, platform and the load average before and after (after: now, rounded, unless given)."""
    found: dict[str, Any] = {"cpus": os.cpu_count()}
    if with_platform:
        found["platform"] = platform.platform()
    found["loadavg_before"] = load_before
    found["loadavg_after"] = loadavg() if load_after is None else load_after
    return found


def load_span(machine: dict[str, Any]) -> str:
    return f"load average {machine['loadavg_before'][0]:.2f} before / {machine['loadavg_after'][0]:.2f} after"


def heading(title: str, result: dict[str, Any]) -> str:
    """The report's first line: what, which revision, when, on how many CPUs, under what load."""
    m = result["machine"]
    return f"## assistd {title} ({result['git']}, {result['started_at']}, {m['cpus']} CPUs, {load_span(m)})"


def versions(names: Iterable[str]) -> dict[str, str]:
    """Python's version and each installed distribution's ("absent" where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def git_revision(where: Path = BENCH_DIR) -> str:
    """The short HEAD revision of the checkout holding `where`, "+dirty" when its src/ has uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=top, capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- other processes ----------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a whole process (every thread), from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in KiB from /proc/<pid>/status."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def wait_or_kill(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def child_server(
    name: str, cmd: list[str], log_path: Path, probe: str | urllib.request.Request
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd` (output to `log_path`), wait up to 30 s until `probe` answers; terminate it on exit."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        wait_or_kill(process)


@dataclass(frozen=True)
class SourceTree:
    """Where a benchmarked server's `assistd` comes from: `label` for the tables, `env` for its process."""

    label: str
    path: Path
    env: dict[str, str]


def add_compare_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare-src",
        type=Path,
        help="a second source tree (the directory holding assistd/, e.g. another checkout's src): every "
        "measurement runs on a server from it too (PYTHONPATH=DIR), in the same run, and the tables show both",
    )


def source_trees(compare_src: Path | None) -> list[SourceTree]:
    """The tree this script imports assistd from, and `compare_src` if given, each checked to be what a
    server started with its env imports (the package is often installed editable from elsewhere)."""
    trees = [_source_tree("this", {})]
    if compare_src is not None:
        path = compare_src.resolve()
        if not (path / "assistd" / "__init__.py").is_file():
            raise SystemExit(f"--compare-src {compare_src}: no assistd package there")
        pythonpath = os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))
        trees.append(_source_tree("compare", {"PYTHONPATH": pythonpath}, expected=path))
    return trees


def _source_tree(name: str, env: dict[str, str], expected: Path | None = None) -> SourceTree:
    found = subprocess.run(
        [sys.executable, "-c", "import assistd; print(assistd.__file__)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = Path(found).resolve().parents[1]
    if expected is not None and path != expected:
        raise SystemExit(f"a server with PYTHONPATH={expected} would import assistd from {path}")
    return SourceTree(f"{name}: {path} ({git_revision(path)})", path, env)


@contextlib.contextmanager
def database_urls(backend: str, count: int) -> Iterator[list[str | None]]:
    """One database per assistd process: SQLite needs nothing (each gets its own data dir)."""
    if backend == "sqlite":
        yield [None] * count
        return
    from assistd.testing.postgres import TestPostgres

    pg = TestPostgres()
    try:
        yield [pg.new_database() for _ in range(count)]
    finally:
        pg.close()


# --- figures ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); with few samples p99 is the maximum."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p99": pct(values, 99),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def ratio(new: float | None, old: float | None) -> str:
    return "—" if not new or not old else f"{new / old:.2f}"


def mib(kib: float | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


# --- command line and results -------------------------------------------------------------------


def add_backends_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--backends", default=default, help="comma-separated: sqlite, postgres")


def parse_backends(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(args.backends) <= {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")


def add_output_args(parser: argparse.ArgumentParser, benchmark: str) -> None:
    parser.add_argument("--baseline", type=Path, help="a previous results JSON to compare with")
    parser.add_argument(
        "--output", type=Path, help=f"where to write JSON (default bench/results/{benchmark}-<time>.json)"
    )


def load_baseline(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path else None


def settings(args: argparse.Namespace, *skip: str) -> dict[str, Any]:
    """The parsed options, less --baseline, --output and `skip`."""
    return {k: v for k, v in vars(args).items() if k not in ("baseline", "output", *skip)}


def result_head(benchmark: str, started: float, machine: dict[str, Any], versions: dict[str, str]) -> dict[str, Any]:
    """The first keys of every results JSON."""
    return {
        "benchmark": benchmark,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "git": git_revision(),
        "machine": machine,
        "versions": versions,
    }


def write_result(result: dict[str, Any], output: Path | None, started: float) -> Path:
    """Write to `output`, or bench/results/<benchmark>-<start time>.json; returns the path."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    path = output or RESULTS_DIR / f"{result['benchmark']}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
