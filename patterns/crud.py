"""A generic async CRUD repository (guide: "CRUD Operations", "Query Optimization",
"Bulk Operations").

Differences from the guide, and why:

* Async SQLAlchemy 2 (`select()`, `AsyncSession`). Writes `flush` and never `commit`: the request
  dependency owns the transaction, so a handler that creates two rows commits both or neither.
* `update` applies only the fields the client sent (`exclude_unset`), so a PATCH does not reset
  the others to their defaults.
* `bulk_create` is one `INSERT … VALUES (…), (…) RETURNING …` per batch through SQLAlchemy's ORM
  bulk insert; the guide's `bulk_save_objects` is a legacy API that returns objects without their
  ids.
* `get_optimized` takes *names* (filters, relations to load, columns to load) that the subclass
  declares in `filterable`, `loadable` and `selectable`; the guide's `getattr(model, field)` lets
  a client name any attribute (`hashed_password`, a relationship) and makes unknown names a 500.
  Unknown names and values that do not fit their column are a 422.
* Values are checked against their columns before they reach SQL (length, NUL, integer range,
  NULL in a NOT NULL column), so a client cannot turn a write into a 500.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, load_only
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.selectable import ForUpdateParameter

from patterns.errors import NotFoundError, ValidationFailedError
from patterns.filtering import FilterSet, check_column_value, mapping_clauses
from patterns.pagination import (
    DEFAULT_LIMIT,
    CursorPage,
    CursorParams,
    Keyset,
    Page,
    PageParams,
    count_rows,
    paginate,
    paginate_keyset,
    paginate_rows,
)

__all__ = ["DEFAULT_BATCH_SIZE", "CRUDBase"]


# Bound to DeclarativeBase (nominal), not to a Protocol with `id`: mypy checks a protocol bound
# against models in import cycles unreliably. The integer `id` is checked when a CRUDBase is made.
ModelT = TypeVar("ModelT", bound=DeclarativeBase)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)

# SQLAlchemy sends up to 1000 rows per INSERT … VALUES statement ("insertmanyvalues"); batches
# no larger than that are one statement each (fewer rows when the row is very wide, to stay
# under the driver's 32767-parameter limit).
DEFAULT_BATCH_SIZE = 1000


class CRUDBase(Generic[ModelT, CreateT, UpdateT]):
    """Typed CRUD for one model; subclass it to declare names clients may use.

    `filterable`: filter name → column, for equality filters given as a mapping.
    `loadable`: relation name → loader option (`selectinload(Item.owner)`), to avoid N+1.
    `selectable`: column name → column, to load only some columns (`load_only`).
    """

    filterable: ClassVar[Mapping[str, QueryableAttribute[Any]]] = {}
    loadable: ClassVar[Mapping[str, ORMOption]] = {}
    selectable: ClassVar[Mapping[str, QueryableAttribute[Any]]] = {}

    def __init__(self, model: type[ModelT]) -> None:
        mapper = inspect(model)  # raises for a class that is not mapped
        self.model = model
        self._columns = {attr.key: attr for attr in mapper.column_attrs}
        id_prop = self._columns.get("id")
        if id_prop is None or not id_prop.columns[0].primary_key:
            raise TypeError(f"{model.__name__} needs an integer primary key column `id`")
        self.id_column = cast("QueryableAttribute[int]", mapper.all_orm_descriptors["id"])
        self._plain_columns_page: Select[Any] | None = None

    # --- reads --------------------------------------------------------------------------

    def query(self) -> Select[ModelT]:
        """The base SELECT every read starts from; override to add default criteria."""
        return select(self.model)

    def _filtered(self, filters: FilterSet | None) -> Select[ModelT]:
        stmt = self.query()
        return filters.apply(stmt) if filters is not None else stmt

    async def get(
        self,
        session: AsyncSession,
        id: int,
        *,
        options: Iterable[ORMOption] = (),
        lock: ForUpdateParameter = None,
    ) -> ModelT | None:
        """The row with this primary key, or None (also for an id no row can have).

        `lock` is `with_for_update`'s argument: `True` (FOR UPDATE) before a delete;
        `{"key_share": True}` (FOR NO KEY UPDATE) before an update that leaves the key alone, so
        concurrent inserts that reference the row are not blocked. A row deleted while waiting
        for the lock is None, so a racing write is a 404 rather than a stale-data error.
        """
        try:
            check_column_value(self.id_column, id)
        except ValueError:
            return None  # an id outside the column's range would be a DataError, not a 404
        if lock is None:
            return await session.get(self.model, id, options=list(options))
        return await session.get(
            self.model, id, options=list(options), with_for_update=lock, populate_existing=True
        )

    async def get_or_404(
        self,
        session: AsyncSession,
        id: int,
        *,
        options: Iterable[ORMOption] = (),
        lock: ForUpdateParameter = None,
    ) -> ModelT:
        obj = await self.get(session, id, options=options, lock=lock)
        if obj is None:
            raise NotFoundError(f"{self.model.__name__} {id} was not found.")
        return obj

    async def get_multi(
        self,
        session: AsyncSession,
        *,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
        filters: FilterSet | None = None,
        order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]] = (),
    ) -> Sequence[ModelT]:
        """One window of rows, filtered, ordered by `order_by` then id (a stable order)."""
        window = PageParams(skip=skip, limit=limit)
        stmt = self._filtered(filters).order_by(*order_by, self.id_column)
        result = await session.scalars(stmt.offset(window.skip).limit(window.limit))
        return result.all()

    async def count(self, session: AsyncSession, filters: FilterSet | None = None) -> int:
        return await count_rows(session, self._filtered(filters))

    async def get_page(
        self,
        session: AsyncSession,
        params: PageParams,
        *,
        schema: type[S],
        filters: FilterSet | None = None,
        where: Iterable[ColumnElement[bool]] = (),
        order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]] = (),
        options: Iterable[ORMOption] = (),
        columns_only: bool = False,
    ) -> Page[S]:
        """A `Page` of `schema` items: a count and one window (two statements plus one per
        `selectinload` option). `where`: criteria the server adds (the caller's own rows);
        `order_by` comes before the id, which makes the order stable.

        `columns_only`: read the table's columns as plain rows rather than ORM objects (no
        identity map, no instance state), with the count in the same statement
        (`paginate_rows`: one round trip, two past the end; docs/performance.md), for a schema
        that needs no relationship; `options` then do not apply."""
        if columns_only:
            stmt = self._columns_page(filters, where, order_by)
            return await paginate_rows(session, stmt, params, schema=schema)
        stmt = self._filtered(filters).where(*where).options(*options)
        stmt = stmt.order_by(*order_by, self.id_column)
        return await paginate(session, stmt, params, schema=schema)

    def _columns_page(
        self,
        filters: FilterSet | None,
        where: Iterable[ColumnElement[bool]],
        order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
    ) -> Select[Any]:
        """The table's columns in page order. The unfiltered statement of a CRUD whose
        `query()` is the plain `select(model)` is built once and kept, so that a statement,
        its total and its cache key are not rebuilt on every request (docs/performance.md);
        any criteria, an order or an overridden `query()` (which may vary) build it anew."""
        where = list(where)
        plain = (
            not where
            and not order_by
            and type(self).query is CRUDBase.query
            and (
                filters is None
                or (type(filters).apply is FilterSet.apply and not filters.clauses())
            )
        )
        if plain and self._plain_columns_page is not None:
            return self._plain_columns_page
        attrs = [getattr(self.model, key) for key in self._columns]
        stmt = self._filtered(filters).where(*where)
        stmt = stmt.with_only_columns(*attrs, maintain_column_froms=True)
        stmt = stmt.order_by(*order_by, self.id_column)
        if plain:
            self._plain_columns_page = stmt
        return stmt

    async def get_keyset_page(
        self,
        session: AsyncSession,
        params: CursorParams,
        *,
        schema: type[S],
        keyset: Keyset | None = None,
        filters: FilterSet | None = None,
        options: Iterable[ORMOption] = (),
    ) -> CursorPage[S]:
        """A `CursorPage` in `keyset` order (by id when not given)."""
        stmt = self._filtered(filters).options(*options)
        return await paginate_keyset(
            session, stmt, keyset or Keyset(self.id_column), params, schema=schema
        )

    async def get_optimized(
        self,
        session: AsyncSession,
        *,
        filters: Mapping[str, Any] | FilterSet | None = None,
        load: Collection[str] = (),
        only: Collection[str] = (),
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
    ) -> Sequence[ModelT]:
        """The guide's selective query with declared names only.

        `filters`: equality on `filterable` names (or a FilterSet); `load`: `loadable` names
        (eager loading, no N+1); `only`: `selectable` names (other columns are not loaded and
        raise on access instead of lazy-loading). Unknown names are a 422 listing the allowed.
        """
        window = PageParams(skip=skip, limit=limit)
        stmt = self.query()
        if isinstance(filters, FilterSet):
            stmt = filters.apply(stmt)
        elif filters:
            stmt = stmt.where(*mapping_clauses(self.filterable, filters, loc=("query",)))
        options = [*self._pick(self.loadable, load, "load")]
        columns = list(self._pick(self.selectable, only, "only"))
        if columns:
            options.append(load_only(*columns, raiseload=True))
        stmt = stmt.options(*options).order_by(self.id_column)
        result = await session.scalars(stmt.offset(window.skip).limit(window.limit))
        return result.all()

    @staticmethod
    def _pick(allowed: Mapping[str, Any], names: Collection[str], param: str) -> list[Any]:
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise ValidationFailedError(
                f"Unknown {param} names.",
                details=[
                    {
                        "loc": ["query", param],
                        "msg": f"unknown {name!r}; allowed: {', '.join(sorted(allowed))}",
                        "type": "unknown_name",
                    }
                    for name in unknown
                ],
            )
        return [allowed[name] for name in dict.fromkeys(names)]

    # --- writes -------------------------------------------------------------------------

    def _values(
        self, obj_in: BaseModel | Mapping[str, Any], *, partial: bool, loc: Sequence[Any]
    ) -> dict[str, Any]:
        data = (
            obj_in.model_dump(exclude_unset=partial)
            if isinstance(obj_in, BaseModel)
            else dict(obj_in)
        )
        details: list[dict[str, Any]] = []
        for key, value in data.items():
            column = self._columns.get(key)
            if column is None:
                # The schema is the server's; a field that is no column is a programming error.
                raise TypeError(f"{self.model.__name__} has no column {key!r}")
            expr = column.columns[0]
            try:
                if value is None and not expr.nullable:
                    raise ValueError("must not be null")
                check_column_value(expr, value)
            except ValueError as exc:
                details.append({"loc": [*loc, key], "msg": str(exc), "type": "value_error"})
        if details:
            raise ValidationFailedError(details=details)
        return data

    async def create(
        self, session: AsyncSession, obj_in: CreateT | Mapping[str, Any], **extra: Any
    ) -> ModelT:
        """Add and flush (the id is assigned; nothing is committed). `extra` sets columns the
        client does not send, such as `owner_id`."""
        data = self._values(obj_in, partial=False, loc=("body",))
        data.update(self._values(extra, partial=False, loc=("body",)))
        obj = self.model(**data)
        session.add(obj)
        await session.flush()
        return obj

    async def update(
        self, session: AsyncSession, db_obj: ModelT, obj_in: UpdateT | Mapping[str, Any]
    ) -> ModelT:
        """Set only the fields the client sent, then flush."""
        for key, value in self._values(obj_in, partial=True, loc=("body",)).items():
            setattr(db_obj, key, value)
        await session.flush()
        return db_obj

    async def delete(self, session: AsyncSession, db_obj: ModelT) -> None:
        """Delete through the ORM (so relationship cascades apply), then flush."""
        await session.delete(db_obj)
        await session.flush()

    async def bulk_create(
        self,
        session: AsyncSession,
        objs_in: Sequence[CreateT | Mapping[str, Any]],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **extra: Any,
    ) -> list[ModelT]:
        """Insert many rows, one `INSERT … RETURNING` per batch, in input order.

        Objects come back from RETURNING (ids and server defaults filled in) and are in the
        session's identity map. Give every row the same keys: SQLAlchemy groups rows by their
        key set, and a different set starts another statement.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        fixed = self._values(extra, partial=False, loc=("body",))
        rows = [
            {**self._values(obj, partial=False, loc=("body", i)), **fixed}
            for i, obj in enumerate(objs_in)
        ]
        stmt = insert(self.model).returning(self.model, sort_by_parameter_order=True)
        out: list[ModelT] = []
        for start in range(0, len(rows), batch_size):
            result = await session.scalars(stmt, rows[start : start + batch_size])
            out.extend(result.all())
        return out
