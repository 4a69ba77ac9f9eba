"""The sandbox's own Python: a virtual environment with the data-science stack, read-only inside.

Built once by `assistd sandbox build` (the README's install command runs it), from the same
interpreter as the server, with pinned versions. The server's own packages are not in it, and the
interpreter's site-packages are hidden from the sandbox (launch.Runtime.site_packages_to_hide).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from assistd.sandbox.launch import Runtime

REQUIREMENTS = (
    "ipykernel==7.4.0",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "matplotlib==3.11.2",
    "pillow==13.0.0",
    "openpyxl==3.1.5",
)
MARKER = "assistd-sandbox.json"


def runtime(venv: Path) -> Runtime:
    """The runtime of an environment built here; raises FileNotFoundError when it is not built."""
    marker = venv / MARKER
    if not marker.is_file():
        raise FileNotFoundError(
            f"The sandbox Python environment is not built at {venv}. Run `assistd sandbox build` "
            "(or set ASSISTD_SANDBOX_PYTHON to one that is)."
        )
    built = json.loads(marker.read_text())
    return Runtime(venv=venv, base_prefix=Path(built["base_prefix"]))


def build(venv: Path, python: str = sys.executable, *, quiet: bool = False) -> Runtime:
    """Create (or refresh) the environment. Needs the package index once; idempotent."""
    marker = venv / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("requirements") == list(REQUIREMENTS):
        return runtime(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, *(["-q"] if quiet else []), *REQUIREMENTS], check=True)
    base = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.base_prefix)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Byte-compile now: the environment is read-only inside the sandbox.
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv)], check=False)
    venv.chmod(0o755)
    marker.write_text(json.dumps({"requirements": list(REQUIREMENTS), "base_prefix": base}))
    return runtime(venv)
