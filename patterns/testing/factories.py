"""factory-boy with an `AsyncSession`.

factory-boy has no async support: its SQLAlchemy factory calls `session.add` and `flush`
synchronously. Here factories only *build* model instances (plain `factory.Factory`, so sub-
factories build related objects too) and `create_async` adds them to the async session and
flushes once: one round trip, ids assigned, nothing committed (the test's transaction is
rolled back by the harness).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import factory
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class AsyncFactory(factory.Factory, Generic[T]):  # type: ignore[misc]
    class Meta:
        abstract = True

    @classmethod
    async def create_async(cls, session: AsyncSession, **kwargs: Any) -> T:
        obj: T = cls.build(**kwargs)
        session.add(obj)
        await session.flush()
        return obj

    @classmethod
    async def create_batch_async(cls, session: AsyncSession, size: int, **kwargs: Any) -> list[T]:
        objs: list[T] = cls.build_batch(size, **kwargs)
        session.add_all(objs)
        await session.flush()
        return objs
