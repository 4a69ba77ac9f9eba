"""Conversation item ids derived from run steps, and where any id sorts as a cursor (adapters/conversations.py)."""

from __future__ import annotations

import pytest

from assistd import ids
from assistd.adapters.conversations import OUTPUT_OFFSET, cursor_key, step_item_ref, tail


def test_step_items_name_their_step_and_call() -> None:
    step = ids.new_id(ids.STEP)
    rest = tail(step)
    assert step_item_ref(f"fc_{rest}_002") == ("fc_", step, 2)
    assert step_item_ref(f"fco_{rest}_002") == ("fco_", step, 2)
    assert step_item_ref(f"fs_{rest}_000") == ("fs_", step, 0)
    assert step_item_ref(f"ci_{rest}_011") == ("ci_", step, 11)
    # An output sorts after every call of its step; calls in order; both at the step's place.
    assert cursor_key(f"fc_{rest}_001") == (rest, 1)
    assert cursor_key(f"fco_{rest}_000") == (rest, OUTPUT_OFFSET)


@pytest.mark.parametrize(
    "item_id",
    [
        ids.new_id(ids.MESSAGE),
        ids.new_id("fc_"),  # a stored function call: no index tail
        "msg_",
        "fc_",
        "fc__",
        "fc_abc_",
        "fc_abc_x1",
        "zz_abc_001",
        "plain",
        "_",
    ],
)
def test_other_ids_are_not_step_items_and_still_sort(item_id: str) -> None:
    assert step_item_ref(item_id) is None
    key, sub = cursor_key(item_id)
    assert sub == 0 and isinstance(key, str)


def test_ids_made_later_sort_later_whatever_their_prefix() -> None:
    first, second, third = ids.new_id(ids.MESSAGE), ids.new_id("fc_"), ids.new_id(ids.STEP)
    assert cursor_key(first) < cursor_key(second) < cursor_key(f"fco_{tail(third)}_000")
