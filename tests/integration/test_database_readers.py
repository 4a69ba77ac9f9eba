"""Database.read() and reader() keep connections out of the pool between reads (issue 18): reads still see
every commit, overlapping reads each get a connection of their own, a failed read gives its connection
back, and the kept connections never hold a transaction open (SQLite: a writer can checkpoint; both:
what another connection commits is seen at once)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.schema import CreateTable

from assistd.db.database import Database, Prepared
from assistd.testing.postgres import TestPostgres

meta = MetaData()
notes = Table("reader_notes", meta, Column("id", String(16), primary_key=True), Column("n", Integer))
BY_ID = Prepared(select(notes.c.id, notes.c.n).where(notes.c.id == bindparam("id")))
BACKENDS = os.environ.get("ASSISTD_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'readers.db'}"
        return
    pg: TestPostgres = request.getfixturevalue("postgres")
    yield pg.new_database()


def test_reads_see_commits_overlap_and_survive_failures(url: str) -> None:
    async def main() -> None:
        db = Database(url)
        other = Database(url)  # another process's writes, as far as the first can tell
        try:
            async with db.write() as conn:
                await conn.execute(CreateTable(notes))
                await conn.execute(notes.insert().values(id="a", n=1))
            for n in range(2, 5):  # every read after a commit elsewhere sees it
                async with other.write() as conn:
                    await conn.execute(notes.update().where(notes.c.id == "a").values(n=n))
                async with db.reader() as reader:
                    assert [tuple(r) for r in await reader.fetch(BY_ID, {"id": "a"})] == [("a", n)]
                async with db.read() as conn:
                    assert (await conn.execute(select(notes.c.n))).scalar_one() == n

            async def overlapping(i: int) -> int:
                async with db.reader() as reader:
                    await asyncio.sleep(0.01 * (i % 3))  # held across awaits, beside the others
                    return len(await reader.fetch(BY_ID, {"id": "a"}))

            assert await asyncio.gather(*(overlapping(i) for i in range(12))) == [1] * 12
            with pytest.raises(Exception, match="(?i)no such table|does not exist"):
                async with db.read() as conn:
                    await conn.execute(text("SELECT * FROM no_such_table"))
            with pytest.raises(Exception, match="(?i)no such table|does not exist"):
                async with db.reader() as reader:
                    await reader.fetch(Prepared(select(text("1")).select_from(text("no_such_table"))), {})
            async with db.reader() as reader:  # the failed reads left nothing broken behind
                assert len(await reader.fetch(BY_ID, {"id": "a"})) == 1
            async with other.write() as conn:  # and no kept connection holds a transaction that blocks this
                await conn.execute(notes.delete())
            async with db.read() as conn:
                assert (await conn.execute(select(notes.c.id))).all() == []
        finally:
            await db.dispose()
            await other.dispose()

    asyncio.run(main())
