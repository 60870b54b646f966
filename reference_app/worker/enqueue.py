"""How the API hands an order to the worker (guide: "Order Processing Flow").

The guide calls `celery_app.send_task` inside the transaction; here the task is published only
after the request's transaction commits, so the worker always finds the order, and a rolled-back
order sends nothing.
"""

from __future__ import annotations

from celery import Celery
from fastapi import BackgroundTasks
from sqlalchemy.ext.asyncio import AsyncSession

from patterns.tasks import send_after_commit
from reference_app.core.celery_app import get_celery_app
from reference_app.worker.tasks import PROCESS_ORDER


def enqueue_process_order(
    session: AsyncSession,
    order_id: int,
    countdown: float,
    *,
    app: Celery | None = None,
    keep_result: bool = True,
    after_response: BackgroundTasks | None = None,
) -> str:
    """Send `process_order(order_id)` with `countdown` seconds of delay once `session` commits.

    In an endpoint pass the FastAPI app's Celery app (`request.app.state.celery`, built from the
    same settings as the API); without `app`, the process's app from the environment's settings
    (`get_celery_app()`) is used, as in scripts. Returns the task id.

    `keep_result=False` for a caller that never reads the result (the API): the worker then
    stores none, and the publish skips the result backend's bookkeeping (with Redis, a
    subscription to the task's result channel per publish). `after_response`: the endpoint's
    `BackgroundTasks`, to publish after the response is sent (`patterns.tasks.send_after_commit`).
    """
    celery = app or get_celery_app()
    return send_after_commit(
        session,
        celery.signature(PROCESS_ORDER),
        args=(order_id,),
        countdown=countdown,
        ignore_result=not keep_result,
        after_response=after_response,
        log_context={"order_id": order_id},  # a failed publish names the order left pending
    )
