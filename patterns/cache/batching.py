"""Concurrent `MGET`s sent to Redis as one pipeline (guide: "Redis Caching").

Under load, a worker's event loop wakes with several requests ready at once, and each of them
reading Redis pays a round trip of its own in redis-py: a connection taken from the pool and
given back, the command written to the socket, two timeouts armed, the reply awaited and
parsed; about 80 µs of CPU per `MGET` on the development machine, a third of a cached profile
hit answered before routing. 32 concurrent callers sharing pipelines paid 33–41 µs each
instead of 78–96, and the hit went from 0.28× to 0.4–0.5× the throughput of a bare `/ping`
(docs/performance.md, "Hot paths").

`MgetBatcher.mget` queues the keys and answers from the batch: every `MGET` asked for in the
same turn of the loop goes out in one pipeline of `MGET`s when the loop next runs, and each
caller gets its own reply (a pipeline's replies come back in the order of its commands). A lone
`MGET` goes out as it is. A Redis error fails every caller of the batch with it, as if each had
called Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["MgetBatcher"]

Values = list[Any]


class MgetBatcher:
    """`await batcher.mget(keys)` is `await redis.mget(keys)`, one round trip shared with the
    other calls of the same turn of the event loop (of one loop: a call from another loop while
    a batch waits goes to Redis alone)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pending: list[tuple[list[str], asyncio.Future[Values]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flushes: set[asyncio.Task[None]] = set()  # referenced until done

    async def mget(self, keys: Sequence[str]) -> Values:
        loop = asyncio.get_running_loop()
        if self._pending and loop is not self._loop:
            return list(await self._redis.mget(list(keys)))
        future: asyncio.Future[Values] = loop.create_future()
        self._pending.append((list(keys), future))
        if len(self._pending) == 1:
            # The task first runs after every callback ready now: the batch is this turn's.
            self._loop = loop
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            if len(batch) == 1:
                replies = [await self._redis.mget(batch[0][0])]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for keys, _ in batch:
                    pipe.mget(keys)
                replies = await pipe.execute()
        except Exception as exc:
            _fail(batch, exc)
            return
        except BaseException:  # cancelled (shutdown): the callers fall back as on an error
            _fail(batch, RedisError("the batched read was cancelled"))
            raise
        for (_, future), values in zip(batch, replies, strict=True):
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(list(values))


def _fail(batch: list[tuple[list[str], asyncio.Future[Values]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
