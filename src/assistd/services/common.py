"""Helpers every service uses: the clock, and a store's page as the API's list."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from assistd.protocol.common import ListPage
from assistd.stores.common import Identified, Page

R = TypeVar("R", bound=Identified)
T = TypeVar("T")


def now() -> int:
    return int(time.time())


def list_page(page: Page[R], to_model: Callable[[R], T]) -> ListPage[T]:
    return ListPage[T](
        data=[to_model(record) for record in page.data],
        first_id=page.first_id,
        last_id=page.last_id,
        has_more=page.has_more,
    )
