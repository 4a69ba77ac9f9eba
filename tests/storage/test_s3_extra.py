"""`assistd serve` with ASSISTD_BLOB_STORE=s3 but without the `s3` extra stops at once, naming the extra.

The extra is hidden from a child interpreter (`sys.modules["obstore"] = None`: find_spec and import
both then report it missing); tests/integration/test_install_extras.py checks the same on a real
install without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HIDE_AND_SERVE = "import sys; sys.modules['obstore'] = None; from assistd.cli import main; sys.exit(main(['serve']))"


def serve(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env |= {"ASSISTD_DATA_DIR": str(tmp_path), **settings}
    return subprocess.run([sys.executable, "-c", HIDE_AND_SERVE], env=env, capture_output=True, text=True, timeout=60)


def test_s3_without_the_extra_is_refused_naming_it(tmp_path: Path) -> None:
    result = serve(tmp_path, ASSISTD_BLOB_STORE="s3", ASSISTD_S3_BUCKET="files")
    assert result.returncode == 2
    assert "assistd[s3]" in result.stderr and "obstore" in result.stderr
    assert "Traceback" not in result.stderr


def test_s3_without_a_bucket_is_refused_naming_the_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assistd", "serve"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")},
            "ASSISTD_DATA_DIR": str(tmp_path),
            "ASSISTD_BLOB_STORE": "s3",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ASSISTD_S3_BUCKET" in result.stderr
    assert "Traceback" not in result.stderr
