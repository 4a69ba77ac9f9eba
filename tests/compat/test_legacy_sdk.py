"""Run this compat suite again under openai 1.109.1, the 1.x release many projects pin.

The SDK goes into <repo>/.sdk/openai-1.109.1 (gitignored) with `pip install --no-deps --target`, and
a pytest subprocess puts that directory first on sys.path. Only the test process sees the old SDK:
the assistd servers it starts keep the environment's own packages (the server imports `openai` for
its upstream provider, so leaking the client's SDK into it through PYTHONPATH would test a server
build nobody runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import LEGACY_SDK, LEGACY_SDK_VERSION

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = REPO / ".sdk" / f"openai-{LEGACY_SDK_VERSION}"
# openai 1.x imports `distro` at import time; it is not a dependency of the pinned SDK, so it is
# installed next to the old SDK instead of into the environment.
PACKAGES = [f"openai=={LEGACY_SDK_VERSION}", "distro==1.9.0"]

# Files that test the server's own behaviour with SDK calls the other files make too: rerunning them
# under the legacy SDK adds minutes and no SDK surface (they run under the pinned SDK).
SERVER_ONLY = [
    "tests/compat/test_metrics.py",  # Prometheus scrapes, over plain HTTP
    "tests/compat/test_containers_gateway.py",  # the kernel gateway backend: test_containers.py's calls
    "tests/compat/test_code_interpreter_gateway.py",  # the same: test_code_interpreter.py's calls
    "tests/compat/test_prompt_budgets.py",  # fitting prompts to a window
    "tests/compat/test_search_ranking_and_cache.py",  # ranking and the search cache
]
# A container's expiry: a minute's wait per database, for nothing the SDK does differently.
DESELECTED = [
    "tests/compat/test_containers.py::test_an_idle_container_expires_its_kernel_ends_and_its_files_stay_readable"
]

BOOTSTRAP = """
import sys
sys.path.insert(0, sys.argv[1])
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""


def ensure_sdk() -> Path:
    if (SDK_DIR / "openai" / "__init__.py").exists() and (SDK_DIR / "distro").is_dir():
        return SDK_DIR
    # Install beside the final path and rename, so a concurrent run never sees half a directory.
    staging = SDK_DIR.with_name(f"{SDK_DIR.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(staging),
            *PACKAGES,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    try:
        staging.rename(SDK_DIR)
    except OSError:  # another run finished first
        shutil.rmtree(staging, ignore_errors=True)
    assert (SDK_DIR / "openai" / "__init__.py").exists()
    return SDK_DIR


@pytest.mark.legacy_runner
@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(bool(LEGACY_SDK), reason="already running under the legacy SDK")
def test_compat_suite_passes_on_openai_1_109_1(tmp_path: Path) -> None:
    sdk_dir = ensure_sdk()
    report = tmp_path / "legacy.xml"
    env = {**os.environ, "ASSISTD_LEGACY_SDK": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BOOTSTRAP,
            str(sdk_dir),
            "tests/compat",
            "-p",
            "no:cacheprovider",
            "-q",
            "-m",
            "not legacy_runner",
            *(f"--ignore={path}" for path in SERVER_ONLY),
            *(f"--deselect={test}" for test in DESELECTED),
            f"--junitxml={report}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1440,
    )
    output = f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, output

    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) == 0 and int(suite.get("errors", "0")) == 0, output
    cases = {case.get("name", ""): case for case in suite.iter("testcase")}
    assert len(cases) >= 20, output
    # The version check really ran (and passed) in the subprocess: it imported 1.109.1.
    version_checks = [case for name, case in cases.items() if name.startswith("test_sdk_version_is_the_one")]
    assert version_checks, output
    for case in version_checks:
        assert case.find("failure") is None and case.find("error") is None and case.find("skipped") is None
