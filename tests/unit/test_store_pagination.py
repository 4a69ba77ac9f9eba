"""stores/common.py: the one cursor pagination and records built from rows, on a real SQLite database."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.schema import CreateTable

from assistd.db.database import Connection, Database
from assistd.errors import NotFound
from assistd.stores.common import Page, Record, get_row, paginate

meta = MetaData()
items = Table("items", meta, Column("id", String(16), primary_key=True), Column("grp", String(4)), Column("n", Integer))

A_IDS = [f"item_{i:02d}" for i in range(1, 10)]  # item_01 … item_09, group "a"
B_IDS = ["item_00", "item_05b", "item_99"]  # group "b", interleaved with a's ids


@dataclass(frozen=True, slots=True)
class Item(Record):
    id: str
    grp: str
    n: int


def run(tmp_path: Path, body: Callable[[Connection], Awaitable[None]]) -> None:
    async def main() -> None:
        db = Database(f"sqlite:///{tmp_path / 'items.db'}")
        try:
            async with db.write() as conn:
                await conn.execute(CreateTable(items))
                rows = [{"id": i, "grp": "a", "n": k} for k, i in enumerate(A_IDS)]
                rows += [{"id": i, "grp": "b", "n": -1} for i in B_IDS]
                await conn.execute(items.insert(), rows)
            async with db.read() as conn:
                await body(conn)
        finally:
            await db.dispose()

    asyncio.run(main())


async def page_of(
    conn: Connection, *, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None
) -> Page[Item]:
    return await paginate(
        conn,
        items,
        [items.c.grp == "a"],
        limit=limit,
        order=order,
        after=after,
        before=before,
        from_row=Item.from_row,
    )


def ids(page: Page[Item]) -> list[str]:
    return [item.id for item in page.data]


def test_order_by_id_both_ways_and_only_matching_rows(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        newest_first = await page_of(conn)
        assert ids(newest_first) == A_IDS[::-1]
        assert (newest_first.first_id, newest_first.last_id, newest_first.has_more) == ("item_09", "item_01", False)
        oldest_first = await page_of(conn, order="asc")
        assert ids(oldest_first) == A_IDS
        assert (oldest_first.first_id, oldest_first.last_id) == ("item_01", "item_09")

    run(tmp_path, body)


def test_limit_reads_one_more_row_to_know_whether_a_next_page_exists(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        first = await page_of(conn, limit=4, order="asc")
        assert ids(first) == A_IDS[:4] and first.has_more
        exact = await page_of(conn, limit=9, order="asc")
        assert ids(exact) == A_IDS and not exact.has_more, "exactly `limit` rows left: no next page"
        one_short = await page_of(conn, limit=8, order="asc")
        assert ids(one_short) == A_IDS[:8] and one_short.has_more

    run(tmp_path, body)


def test_after_walks_every_row_once_in_either_order(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        for order, expected in (("asc", A_IDS), ("desc", A_IDS[::-1])):
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = await page_of(conn, limit=2, order=order, after=cursor)
                seen += ids(page)
                if not page.has_more:
                    break
                cursor = page.last_id
            assert seen == expected, order
        # A cursor need not be an id in the list: it is a position in the id order.
        assert ids(await page_of(conn, order="asc", after="item_05b")) == A_IDS[5:]
        assert ids(await page_of(conn, order="desc", after="item_05b")) == A_IDS[:5][::-1]

    run(tmp_path, body)


def test_before_gives_the_rows_just_before_the_cursor_in_the_order_asked(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        asc = await page_of(conn, limit=3, order="asc", before="item_07")
        assert ids(asc) == ["item_04", "item_05", "item_06"] and asc.has_more
        desc = await page_of(conn, limit=3, order="desc", before="item_03")
        assert ids(desc) == ["item_06", "item_05", "item_04"] and desc.has_more
        near_start = await page_of(conn, limit=3, order="asc", before="item_03")
        assert ids(near_start) == ["item_01", "item_02"] and not near_start.has_more
        # Both cursors: the rows between them, read forwards from `after`.
        between = await page_of(conn, limit=10, order="asc", after="item_02", before="item_06")
        assert ids(between) == ["item_03", "item_04", "item_05"] and not between.has_more
        capped = await page_of(conn, limit=2, order="asc", after="item_02", before="item_06")
        assert ids(capped) == ["item_03", "item_04"] and capped.has_more

    run(tmp_path, body)


def test_an_empty_page_has_no_ids(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        for page in (
            await page_of(conn, order="asc", after="item_09"),
            await page_of(conn, order="desc", before="item_09"),
            await page_of(conn, order="asc", before="item_01"),
        ):
            assert page.data == [] and page.first_id is None and page.last_id is None and not page.has_more

    run(tmp_path, body)


def test_records_are_frozen_and_a_row_they_do_not_match_fails_loudly(tmp_path: Path) -> None:
    async def body(conn: Connection) -> None:
        item = Item.from_row(await get_row(conn, items, "item", "item_03"))
        assert item == Item("item_03", "a", 2)
        with pytest.raises(dataclasses.FrozenInstanceError):
            item.n = 5  # type: ignore[misc]
        partial = (await conn.execute(select(items.c.id, items.c.grp))).first()
        assert partial is not None
        with pytest.raises(TypeError):
            Item.from_row(partial)
        with pytest.raises(NotFound, match="No item found with id 'item_42'"):
            await get_row(conn, items, "item", "item_42")
        # Extra conditions count: item_00 is in group b.
        with pytest.raises(NotFound, match="No item found"):
            await get_row(conn, items, "item", "item_00", items.c.grp == "a")

    run(tmp_path, body)
