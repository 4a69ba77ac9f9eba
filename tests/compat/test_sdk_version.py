"""The suite runs against the SDK it means to: the pinned one, or 1.109.1 under test_legacy_sdk.py."""

from __future__ import annotations

import openai

from .conftest import LEGACY_SDK, LEGACY_SDK_VERSION, PINNED_SDK_VERSION


def test_sdk_version_is_the_one_under_test() -> None:
    expected = LEGACY_SDK_VERSION if LEGACY_SDK else PINNED_SDK_VERSION
    assert openai.__version__ == expected, openai.__file__
