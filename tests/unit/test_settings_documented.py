"""Every setting is documented in docs/configuration.md, and the page names no setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from assistd.settings import Settings

CONFIG_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))


def setting_env_vars() -> set[str]:
    return {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}


def documented_env_vars() -> set[str]:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    return set(re.findall(rf"\b{re.escape(ENV_PREFIX.upper())}[A-Z0-9_]*[A-Z0-9]\b", text))


def test_prefix_is_assistd() -> None:
    assert ENV_PREFIX == "ASSISTD_"


def test_every_setting_is_documented() -> None:
    missing = sorted(setting_env_vars() - documented_env_vars())
    assert not missing, f"settings missing from {CONFIG_DOC.name}: {', '.join(missing)}"


def test_documented_settings_exist() -> None:
    unknown = sorted(documented_env_vars() - setting_env_vars())
    assert not unknown, f"{CONFIG_DOC.name} documents settings that do not exist: {', '.join(unknown)}"
