"""CRUDBase on real PostgreSQL with the users table: flush-not-commit writes, partial updates,
one INSERT … RETURNING per bulk batch, and declared names only in `get_optimized`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, QueryableAttribute, mapped_column, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from patterns.crud import CRUDBase
from patterns.db.queries import QueryCounter
from patterns.errors import NotFoundError, ValidationFailedError
from patterns.filtering import FilterSet, eq, icontains
from patterns.pagination import CursorParams, PageParams
from reference_app.models import User

QueryAssert = Callable[[int], AbstractContextManager[QueryCounter]]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str


class UserCreate(BaseModel):
    email: str
    hashed_password: str = "not-a-hash"
    full_name: str | None = None
    role: str = "user"


class UserUpdate(BaseModel):
    full_name: str | None = None
    role: str | None = None
    is_active: bool | None = None


class UserFilter(FilterSet):
    role: Annotated[str | None, eq(User.role)] = None
    email: Annotated[str | None, icontains(User.email), Field(min_length=1)] = None


class CRUDUser(CRUDBase[User, UserCreate, UserUpdate]):
    filterable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "role": User.role,
        "is_active": User.is_active,
    }
    loadable: ClassVar[dict[str, ORMOption]] = {"items": selectinload(User.items)}
    selectable: ClassVar[dict[str, QueryableAttribute[Any]]] = {
        "email": User.email,
        "full_name": User.full_name,
    }


users = CRUDUser(User)


async def make_users(session: AsyncSession, n: int, **kwargs: Any) -> list[User]:
    return await users.bulk_create(
        session, [UserCreate(email=f"u{i}@example.com", **kwargs) for i in range(n)]
    )


# --- create, get, update, delete ---------------------------------------------------------


async def test_create_is_one_insert_and_leaves_the_commit_to_the_caller(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    with assert_num_queries(1) as counter:
        user = await users.create(db_session, UserCreate(email="ada@example.com"), role="admin")
    assert counter.statements[0].startswith("INSERT INTO users")
    assert user.id is not None
    assert user.role == "admin"
    assert db_session.in_transaction()  # flushed, not committed


async def test_create_refuses_values_that_do_not_fit_their_columns(
    db_session: AsyncSession,
) -> None:
    with pytest.raises(ValidationFailedError) as info:
        await users.create(
            db_session, UserCreate(email="x" * 321, full_name="a\x00b"), role="manager"
        )
    assert [d["loc"] for d in info.value.details or []] == [
        ["body", "email"],
        ["body", "full_name"],
    ]


async def test_a_schema_field_that_is_no_column_is_a_programming_error(
    db_session: AsyncSession,
) -> None:
    with pytest.raises(TypeError, match="no column 'password'"):
        await users.create(db_session, {"email": "a@example.com", "password": "secret"})


async def test_get_returns_the_row_or_none(db_session: AsyncSession) -> None:
    user = await users.create(db_session, UserCreate(email="ada@example.com"))
    db_session.expunge_all()
    fetched = await users.get(db_session, user.id)
    assert fetched is not None
    assert fetched.email == "ada@example.com"
    assert await users.get(db_session, user.id + 1000) is None


async def test_an_id_outside_the_column_range_is_not_found_without_a_query(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    with assert_num_queries(0):
        assert await users.get(db_session, 2**31) is None
        assert await users.get(db_session, -(2**40)) is None
    with pytest.raises(NotFoundError, match="User 2147483648 was not found"):
        await users.get_or_404(db_session, 2**31)


async def test_update_changes_only_the_fields_that_were_sent(db_session: AsyncSession) -> None:
    user = await users.create(db_session, UserCreate(email="ada@example.com", full_name="Ada"))
    await users.update(db_session, user, UserUpdate(role="manager"))
    assert (user.full_name, user.role) == ("Ada", "manager")
    await users.update(db_session, user, UserUpdate(full_name=None))  # sent as null: cleared
    assert user.full_name is None
    db_session.expunge_all()
    stored = await users.get_or_404(db_session, user.id)
    assert (stored.full_name, stored.role, stored.is_active) == (None, "manager", True)


async def test_update_refuses_null_for_a_not_null_column(db_session: AsyncSession) -> None:
    user = await users.create(db_session, UserCreate(email="ada@example.com"))
    with pytest.raises(ValidationFailedError) as info:
        await users.update(db_session, user, UserUpdate(is_active=None))
    assert info.value.details == [
        {"loc": ["body", "is_active"], "msg": "must not be null", "type": "value_error"}
    ]


async def test_delete_removes_the_row(db_session: AsyncSession) -> None:
    user = await users.create(db_session, UserCreate(email="ada@example.com"))
    await users.delete(db_session, user)
    assert await db_session.scalar(select(User).where(User.id == user.id)) is None


def test_a_model_without_an_integer_id_primary_key_is_refused() -> None:
    class Scratch(DeclarativeBase):
        pass

    class Country(Scratch):
        __tablename__ = "countries"
        code: Mapped[str] = mapped_column(String(2), primary_key=True)

    with pytest.raises(TypeError, match="Country needs an integer primary key column `id`"):
        CRUDBase[Country, UserCreate, UserUpdate](Country)


# --- lists -----------------------------------------------------------------------------------


async def test_get_multi_and_count_apply_filters_and_a_stable_order(
    db_session: AsyncSession,
) -> None:
    made = await make_users(db_session, 5)
    admins = await users.bulk_create(
        db_session, [UserCreate(email=f"admin{i}@example.com", role="admin") for i in range(3)]
    )
    window = await users.get_multi(db_session, skip=1, limit=3)
    assert [u.id for u in window] == [u.id for u in made[1:4]]
    only_admins = UserFilter(role="admin")
    assert [u.id for u in await users.get_multi(db_session, filters=only_admins)] == [
        u.id for u in admins
    ]
    assert await users.count(db_session) == 8
    assert await users.count(db_session, UserFilter(email="ADMIN")) == 3


async def test_get_page_is_a_count_and_one_window(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    made = await make_users(db_session, 7)
    with assert_num_queries(2):
        page = await users.get_page(db_session, PageParams(skip=5, limit=5), schema=UserOut)
    assert [u.id for u in page.items] == [u.id for u in made[5:]]
    assert (page.total, page.page, page.size, page.pages) == (7, 2, 5, 2)


async def test_get_keyset_page_walks_every_row_once(db_session: AsyncSession) -> None:
    made = await make_users(db_session, 7)
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        page = await users.get_keyset_page(
            db_session, CursorParams(cursor=cursor, limit=3), schema=UserOut
        )
        seen += [u.id for u in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [u.id for u in made]


# --- bulk_create ------------------------------------------------------------------------------


async def test_bulk_create_is_one_insert_returning_per_batch(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    rows = [UserCreate(email=f"bulk{i}@example.com") for i in range(2500)]
    with assert_num_queries(3) as counter:
        created = await users.bulk_create(db_session, rows, batch_size=1000)
    assert all(s.startswith("INSERT INTO users") and "RETURNING" in s for s in counter.statements)
    assert [u.email for u in created] == [r.email for r in rows]  # input order
    ids = [u.id for u in created]
    assert ids == sorted(ids)
    assert len(set(ids)) == 2500


async def test_bulk_created_objects_are_in_the_identity_map(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    created = await make_users(db_session, 3)
    with assert_num_queries(0):
        assert await db_session.get(User, created[1].id) is created[1]
    assert created[0].is_active is True  # server/Python defaults came back with RETURNING
    assert created[0].created_at is not None


async def test_bulk_create_applies_fixed_values_to_every_row(db_session: AsyncSession) -> None:
    created = await users.bulk_create(
        db_session, [{"email": "a@example.com", "hashed_password": "x"}], role="manager"
    )
    assert created[0].role == "manager"


async def test_bulk_create_names_the_row_that_does_not_fit(db_session: AsyncSession) -> None:
    rows = [UserCreate(email="ok@example.com"), UserCreate(email="bad\x00@example.com")]
    with pytest.raises(ValidationFailedError) as info:
        await users.bulk_create(db_session, rows)
    assert info.value.details is not None
    assert info.value.details[0]["loc"] == ["body", 1, "email"]


# --- get_optimized ----------------------------------------------------------------------------


async def test_get_optimized_filters_on_declared_names(db_session: AsyncSession) -> None:
    await make_users(db_session, 2)
    managers = await users.bulk_create(
        db_session, [UserCreate(email="m@example.com", role="manager")]
    )
    found = await users.get_optimized(db_session, filters={"role": "manager", "is_active": True})
    assert [u.id for u in found] == [m.id for m in managers]
    assert len(await users.get_optimized(db_session, filters=UserFilter(role="user"))) == 2


@pytest.mark.parametrize(
    ("kwargs", "loc"),
    [
        ({"filters": {"hashed_password": "x"}}, ["query", "hashed_password"]),
        ({"filters": {"is_active": "perhaps"}}, ["query", "is_active"]),
        ({"filters": {"role": "x" * 17}}, ["query", "role"]),
        ({"load": ["owner"]}, ["query", "load"]),
        ({"only": ["hashed_password"]}, ["query", "only"]),
    ],
)
async def test_get_optimized_refuses_undeclared_names_and_bad_values(
    db_session: AsyncSession, kwargs: dict[str, Any], loc: list[str]
) -> None:
    with pytest.raises(ValidationFailedError) as info:
        await users.get_optimized(db_session, **kwargs)
    assert info.value.details is not None
    assert info.value.details[0]["loc"] == loc


async def test_get_optimized_loads_only_the_selected_columns(db_session: AsyncSession) -> None:
    await users.create(db_session, UserCreate(email="ada@example.com", full_name="Ada"))
    db_session.expunge_all()
    (user,) = await users.get_optimized(db_session, only=["email"])
    assert user.email == "ada@example.com"
    with pytest.raises(InvalidRequestError):
        _ = user.full_name  # not loaded, and never lazily loaded behind our back


async def test_get_optimized_eager_loads_declared_relations(
    db_session: AsyncSession, assert_num_queries: QueryAssert
) -> None:
    await make_users(db_session, 3)
    db_session.expunge_all()
    with assert_num_queries(2):  # the users, then all their items in one SELECT … IN
        loaded = await users.get_optimized(db_session, load=["items"])
    assert [u.items for u in loaded] == [[], [], []]
    db_session.expunge_all()
    (plain, *_) = await users.get_optimized(db_session)
    with pytest.raises(InvalidRequestError):
        _ = plain.items  # lazy="raise": not loaded unless asked
