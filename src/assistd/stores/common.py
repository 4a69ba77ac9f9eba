"""What every store shares: records built from rows, the one get-or-404 and the one cursor pagination.

A store module holds the SQL of one aggregate. Its functions take a connection from the caller, who
owns the transaction (services decide what happens together), and return frozen records, never rows.
Stores do not read the clock: a time to write or compare with is given by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from sqlalchemy import BindParameter, ColumnElement, FromClause, Row, Table, UnaryExpression, func, literal, select

from assistd.db.database import Connection
from assistd.errors import not_found

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A JSON document kept in a column as the client gave it (metadata, tool resources, content, ...).
Json = dict[str, Any]


class Record:
    """Base of the records stores return (frozen, slotted dataclasses). `from_row` takes a row whose
    columns are exactly the record's fields, so a column a record misses fails loudly in every test."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()  # the dataclass's field names, in order

    if TYPE_CHECKING:  # each record's dataclass __init__, with its fields

        def __init__(self, *values: Any, **named: Any) -> None: ...

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        if row._fields == cls.__match_args__:  # the usual case, and the fastest: a third of the time by name
            return cls(*row)
        return cls(**row._mapping)


def columns(record: DataclassInstance) -> dict[str, object]:
    """A record's fields as column values, for an insert (shallow: JSON documents are not copied)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


class Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Identified)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a cursor list, in the order asked for; `has_more` says whether a next page exists."""

    data: list[R]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return self.data[0].id if self.data else None

    @property
    def last_id(self) -> str | None:
        return self.data[-1].id if self.data else None


async def get_row(conn: Connection, table: Table, kind: str, object_id: str, *where: ColumnElement[bool]) -> Row[Any]:
    """The row with this id (and the extra conditions), or the API's 404 for `kind`."""
    row = (await conn.execute(select(table).where(table.c.id == object_id, *where))).first()
    if row is None:
        raise not_found(kind, object_id)
    return row


def order_key(table: FromClause) -> ColumnElement[str]:
    """What a table's lists order by: the id, or for tables that can hold imported objects (whose ids
    came from elsewhere and do not sort by time), `coalesce(sort_key, id)` (db/tables.py `sort_key`)."""
    if "sort_key" in table.c:
        return func.coalesce(table.c.sort_key, table.c.id)
    return table.c.id


def cursor_key(table: Table, object_id: str | BindParameter[str]) -> ColumnElement[str]:
    """Where the object with this id sits in `order_key`'s order. An id no longer there (deleted between
    pages) stands for itself: ids made here sort by time, so paging past a deleted one still works.
    The id is a value, or a bound parameter of a statement built once and executed with many ids."""
    given = literal(object_id) if isinstance(object_id, str) else object_id
    if "sort_key" not in table.c:
        return given
    cursor = table.alias("cursor")  # not correlated with the listed table: the cursor's own row
    stored = select(order_key(cursor)).where(cursor.c.id == given).scalar_subquery()
    return func.coalesce(stored, given)


def page_conditions(
    table: Table, ascending: bool, after: str | BindParameter[str] | None, before: str | BindParameter[str] | None
) -> tuple[list[ColumnElement[bool]], UnaryExpression[str], bool]:
    """The cursor conditions of a page, the order to scan in, and whether the scan runs backwards (with
    `before` alone: read backwards from the cursor, then restore the requested order, see `page_of`)."""
    key = order_key(table)
    conditions: list[ColumnElement[bool]] = []
    if after is not None:
        at = cursor_key(table, after)
        conditions.append(key > at if ascending else key < at)
    backwards = before is not None and after is None
    if before is not None:
        at = cursor_key(table, before)
        conditions.append(key < at if ascending else key > at)
    scan = key.asc() if ascending != backwards else key.desc()
    return conditions, scan, backwards


def page_of(rows: Sequence[T], limit: int, backwards: bool, build: Callable[[T], R]) -> Page[R]:
    """A page from the `limit + 1` rows a page query read (the extra one says whether more follow)."""
    has_more = len(rows) > limit
    kept = list(rows[:limit])
    if backwards:
        kept.reverse()
    return Page(data=[build(row) for row in kept], has_more=has_more)


async def paginate(
    conn: Connection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int,
    order: str,
    after: str | None,
    before: str | None,
    from_row: Callable[[Row[Any]], R],
) -> Page[R]:
    """Cursor pages ordered by id, which sorts by creation time (ids.py), or by an imported object's
    sort key (`order_key`): one query of `limit + 1` rows."""
    conditions, scan, backwards = page_conditions(table, order == "asc", after, before)
    query = select(table).where(*where, *conditions).order_by(scan).limit(limit + 1)
    rows = (await conn.execute(query)).all()
    return page_of(rows, limit, backwards, from_row)
