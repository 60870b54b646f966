"""Atomic rate limiting in Redis as a FastAPI dependency (guide: "Rate Limiting").

The guide's `rate_limit` is used as a decorator but is a plain function; its GET-then-INCR lets
concurrent requests all pass the check before any increments, and its EXPIRE after every INCR
pushes the window forward on each request, so a client that keeps retrying is never let back in.
Here each check is one Lua script (atomic in Redis, using the server's clock), in two flavours:

* fixed window: INCR, and PEXPIRE only when the key is new;
* sliding window (log): a sorted set of request timestamps trimmed to the window.

Hand-written rather than fastapi-limiter or slowapi: the kit needs the app's own Redis client per
request (fakeredis when embedded, a logical database per test worker), the error envelope, a
failure policy and a rejection counter; the two scripts are short and their exactness under
concurrency is tested (docs: Decisions).

When Redis cannot be reached the limiter follows its policy: fail open (let the request through,
log it, count it) or fail closed (503 in the envelope). The kit fails open by default: a cache
outage should not take sign-up and login down; brute force is still bounded by the argon2 cost.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError

from patterns.errors import RateLimitedError, ServiceUnavailableError
from patterns.observability.repeated_warning import RepeatedWarning

logger = logging.getLogger("patterns.rate_limit")

# KEYS[1] counter; ARGV[1] limit, ARGV[2] window ms. Returns {allowed, count, ms until reset}.
FIXED_WINDOW_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if count > tonumber(ARGV[1]) then
  return {0, count, ttl}
end
return {1, count, ttl}
"""

# KEYS[1] sorted set; ARGV[1] limit, ARGV[2] window ms, ARGV[3] unique member.
# Returns {allowed, count, ms until a slot frees}.
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = window
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
  return {0, count, wait}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, count + 1, window}
"""


@dataclass(frozen=True)
class Rate:
    """`limit` requests per `window_s` seconds."""

    limit: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`"5/3600"`, `"5/hour"`, `"10/minute"`, `"3/second"`, `"100/day"`."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+|second|minute|hour|day)\s*", text)
        if not m:
            raise ValueError(f"not a rate: {text!r} (expected e.g. '5/3600' or '5/hour')")
        units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
        window = units.get(m.group(2)) or int(m.group(2))
        rate = cls(int(m.group(1)), window)
        if rate.limit < 1 or rate.window_s < 1:
            raise ValueError(f"a rate needs a positive limit and window: {text!r}")
        return rate


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int


def _whole_seconds(ms: int) -> int:
    """Milliseconds rounded up to whole seconds, at least 1 (a `Retry-After`)."""
    return max(1, -(-int(ms) // 1000))


class Algorithm(enum.StrEnum):
    FIXED_WINDOW = "fixed"
    SLIDING_WINDOW = "sliding"


class RateLimiter:
    """Checks one key against one rate, atomically."""

    def __init__(
        self, redis: Redis, *, algorithm: Algorithm = Algorithm.FIXED_WINDOW, prefix: str = "rl"
    ) -> None:
        self._redis = redis
        self._algorithm = algorithm
        self._prefix = prefix
        lua = FIXED_WINDOW_LUA if algorithm is Algorithm.FIXED_WINDOW else SLIDING_WINDOW_LUA
        self._script = redis.register_script(lua)

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request for `key`; raises `RedisError` when Redis is unreachable."""
        window_ms = rate.window_s * 1000
        args: list[str | int] = [rate.limit, window_ms]
        if self._algorithm is Algorithm.SLIDING_WINDOW:
            args.append(uuid.uuid4().hex)
        allowed, count, wait_ms = await self._script(
            keys=[f"{self._prefix}:{self._algorithm.value}:{key}"], args=args
        )
        return Decision(
            allowed=bool(allowed),
            limit=rate.limit,
            remaining=max(0, rate.limit - int(count)),
            reset_after_s=_whole_seconds(wait_ms),
        )


KeyFunc = Callable[[Request], str | Awaitable[str]]


def client_ip(request: Request) -> str:
    """The peer address. Behind a proxy, run uvicorn with `--proxy-headers` and
    `--forwarded-allow-ips` so this is the client's address, not the proxy's."""
    return request.client.host if request.client else "unknown"


def route_key(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


class _Limit:
    """What both limits share: a name, a rate and a Redis client per request, and the policy
    when Redis cannot be reached (fail open: log and let the request through; else a 503)."""

    def __init__(
        self,
        name: str,
        *,
        rate: Callable[[Request], Rate],
        redis: Callable[[Request], Redis],
        fail_open: Callable[[Request], bool],
        on_reject: Callable[[str], None] | None,
    ) -> None:
        # One line per 30 s in an outage, not one per request (login is hammered).
        self._unavailable_warning = RepeatedWarning(logger)
        self.name = name
        self._rate = rate
        self._redis = redis
        self._fail_open = fail_open
        self._on_reject = on_reject

    def _unavailable(self, request: Request, exc: Exception) -> None:
        """Redis did not answer the check: return to let the request through, or raise a 503."""
        if not self._fail_open(request):
            raise ServiceUnavailableError("Rate limiting is unavailable right now.") from exc
        self._unavailable_warning.warn(
            "rate limiter %s: Redis unavailable (%s), failing open", self.name, type(exc).__name__
        )

    def _rejected(self) -> None:
        if self._on_reject:
            self._on_reject(self.name)


class RateLimit(_Limit):
    """A FastAPI dependency: `Depends(RateLimit("register", rate=..., redis=..., key=client_ip))`.

    `rate` and `redis` are callables of the request, so limits can come from the app's settings
    and the client from its state. Sets `X-RateLimit-*` headers; 429 with `Retry-After` when over.
    """

    def __init__(
        self,
        name: str,
        *,
        rate: Callable[[Request], Rate],
        redis: Callable[[Request], Redis],
        key: KeyFunc = client_ip,
        algorithm: Algorithm = Algorithm.FIXED_WINDOW,
        fail_open: Callable[[Request], bool] = lambda _r: True,
        on_reject: Callable[[str], None] | None = None,
        on_unavailable: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name, rate=rate, redis=redis, fail_open=fail_open, on_reject=on_reject)
        self._key = key
        self._algorithm = algorithm
        self._on_unavailable = on_unavailable
        self._limiters: dict[int, RateLimiter] = {}

    def _limiter(self, redis: Redis) -> RateLimiter:
        limiter = self._limiters.get(id(redis))
        if limiter is None:
            limiter = self._limiters[id(redis)] = RateLimiter(redis, algorithm=self._algorithm)
        return limiter

    async def __call__(self, request: Request, response: Response) -> None:
        rate = self._rate(request)
        raw_key = self._key(request)
        key = raw_key if isinstance(raw_key, str) else await raw_key
        try:
            decision = await self._limiter(self._redis(request)).hit(f"{self.name}:{key}", rate)
        except (RedisError, OSError) as exc:
            if self._on_unavailable:
                self._on_unavailable(self.name)
            self._unavailable(request, exc)
            return
        headers = {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(decision.reset_after_s),
        }
        if not decision.allowed:
            self._rejected()
            raise RateLimitedError(
                f"Rate limit exceeded: at most {rate.limit} requests per {rate.window_s} s.",
                headers={**headers, "Retry-After": str(decision.reset_after_s)},
            )
        response.headers.update(headers)


# KEYS[1] failure counter; ARGV[1] limit, ARGV[2] window ms.
# Returns {allowed, failures counted, ms until the window ends}. An attempt under the limit is
# counted before it is checked (so concurrent attempts cannot all pass one free slot); one over
# the limit is refused and not counted, so the window does not move while it is refused.
RESERVE_ATTEMPT_LUA = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if count >= tonumber(ARGV[1]) then
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {0, count, ttl}
end
count = redis.call('INCR', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {1, count, ttl}
"""

# KEYS[1] failure counter: an attempt that succeeded gives its count back.
RELEASE_ATTEMPT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('DECR', KEYS[1]) <= 0 then
    redis.call('DEL', KEYS[1])
  end
end
return 0
"""


class FailedAttemptLimit(_Limit):
    """At most `rate.limit` failed attempts per subject (an account) per `rate.window_s`,
    wherever they come from: OWASP's answer to credential stuffing spread over many addresses,
    beside the per-address `RateLimit`.

    Use it around the check::

        async with account_limit.attempt(request, email):
            ...  # raise when the credentials are wrong

    Each attempt reserves a slot atomically before the check runs, so attempts racing from many
    addresses meet one limit exactly; a check that completes gives the slot back, one that
    raises keeps it counted. Over the limit the attempt is refused before any check (429 with
    `Retry-After`, until the window that the first failure opened ends), also with the right
    password: otherwise the answer would tell a guesser which password is right. Subjects
    are counted whether or not such an account exists, so the 429 does not tell either; they
    are stored as SHA-256 digests, not as the emails themselves.
    """

    def __init__(
        self,
        name: str,
        *,
        rate: Callable[[Request], Rate],
        redis: Callable[[Request], Redis],
        fail_open: Callable[[Request], bool] = lambda _r: True,
        on_reject: Callable[[str], None] | None = None,
        prefix: str = "rl:failures",
    ) -> None:
        super().__init__(name, rate=rate, redis=redis, fail_open=fail_open, on_reject=on_reject)
        self._prefix = prefix

    def key(self, subject: str) -> str:
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self._prefix}:{self.name}:{digest}"

    @asynccontextmanager
    async def attempt(self, request: Request, subject: str) -> AsyncIterator[None]:
        """Count one attempt for `subject`; refused with 429 when it has failed too often."""
        redis = self._redis(request)
        key = self.key(subject)
        rate = self._rate(request)
        try:
            allowed, _count, wait_ms = await redis.eval(
                RESERVE_ATTEMPT_LUA, 1, key, rate.limit, rate.window_s * 1000
            )
        except (RedisError, OSError) as exc:
            self._unavailable(request, exc)
            yield
            return
        if not allowed:
            self._rejected()
            raise RateLimitedError(
                f"Too many failed attempts: at most {rate.limit} per {rate.window_s} s.",
                code="too_many_failed_attempts",
                headers={"Retry-After": str(_whole_seconds(wait_ms))},
            )
        yield
        try:
            await redis.eval(RELEASE_ATTEMPT_LUA, 1, key)
        except (RedisError, OSError) as exc:  # the success stands; the slot frees with the window
            self._unavailable_warning.warn(
                "rate limiter %s: Redis unavailable (%s), slot kept",
                self.name,
                type(exc).__name__,
            )
