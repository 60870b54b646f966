"""The transactional outbox: tasks to publish, written in the transaction that makes them due
(guide: "Celery Tasks", "Order Processing Flow"; docs: "Background work").

A row here is a Celery task that must be sent: the order flow inserts it in the order's own
transaction, so it exists if and only if the order committed. The relay
(`reference_app.worker.outbox`) publishes it to the broker and deletes it, in one transaction,
after the publish: a relay that dies in between publishes the row again later (the task is
idempotent), and no committed order is left without its task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Identity, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patterns.db import UTCDateTime, utcnow
from patterns.db.base import CURRENT_TIMESTAMP
from patterns.observability.request_id import get_request_id
from reference_app.models.base import Base


class OutboxMessage(Base):
    __tablename__ = "outbox"

    # BIGINT identity: rows come and go all day, the counter only grows (SQLite's rowid alias
    # must be spelled INTEGER). The relay reads in id order.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(always=False),
        primary_key=True,
    )
    task: Mapped[str] = mapped_column(String(200), nullable=False)
    args: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    # When the task may run (Celery's `eta`): the order's countdown from its commit.
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The request that wrote the row: the relay puts it in the task's headers, so the worker's
    # log lines carry it as they would for a task published by the request itself.
    request_id: Mapped[str | None] = mapped_column(String(128), default=get_request_id)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=CURRENT_TIMESTAMP, nullable=False
    )
