"""structlog set-up: JSON or console, request ids, redaction (guide: "Structured Logging").

One pipeline for every line: structlog's own loggers and stdlib loggers (uvicorn, SQLAlchemy,
Celery, anything) are all rendered by structlog's `ProcessorFormatter` on the root logger's
handlers, so a JSON deployment emits nothing but JSON. Each line carries `timestamp`, `level`,
`logger`, `event` and `request_id` (null outside a request), plus anything bound with
`structlog.contextvars` (a Celery task's id and name).

Secrets are removed by `redact_secrets`, the last step before rendering: values under keys that
name a secret, and JWTs, `Bearer`/`Basic` credentials and `password=...` pairs found inside any
string, tracebacks included.

The guide's rotating file handler is kept (`log_file`), always writing JSON: a file is read by
machines. Each process rotates its own handle, so with several workers give each its own file
or log to stderr and let the platform collect it.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO, cast

import pydantic_core
import structlog
from structlog.dev import ConsoleRenderer, RichTracebackFormatter, plain_traceback
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from patterns.observability.request_id import get_request_id

REDACTED: Final = "[REDACTED]"
# A key is secret when its lower-cased name contains one of these.
SECRET_KEY_PARTS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "credential",
    "private_key",
)
_KEY_WORDS = r"password|passwd|secret|token|(?:api|private)[_-]?key|authorization|cookie|credential"
_SECRET_IN_TEXT = re.compile(
    # A JWT: base64url header and payload, both JSON objects, so both start with "eyJ".
    r"(?P<jwt>\beyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*)"
    # "Bearer <token>" / "Basic <credentials>" (an Authorization header's value).
    r"|(?P<scheme>\b(?:bearer|basic)\s+)[\w.~+/=-]{4,}"
    # "password=..." / "'api_key': '...'" / "token: ..." in free text, reprs and query strings.
    rf"|(?P<key>\b[\w-]*(?:{_KEY_WORDS})[\w-]*[\"']?\s*[=:]\s*[\"']?)"
    r"(?:(?:bearer|basic)\s+)?[^\s\"'&,;)}\]]+",
    re.IGNORECASE,
)
# Written into an exception once it has been logged with its traceback; see
# `DropAlreadyLoggedExceptions`.
LOGGED_MARK: Final = "_kit_exception_logged"
# Set on the handlers `configure_logging` installs (and only on those).
KIT_HANDLER: Final = "_kit_handler"
# uvicorn's dictConfig gives these their own handlers and stops propagation: cleared and set to
# propagate, so their lines are rendered like ours.
ADOPTED_LOGGERS: Final = ("uvicorn", "uvicorn.error")
# The middleware's access line replaces uvicorn's (it adds the route template, the duration and
# the request id); uvicorn's would be a second line per request.
SILENCED_LOGGERS: Final = ("uvicorn.access",)
DEFAULT_FILE_MAX_BYTES: Final = 10 * 1024 * 1024  # the guide's 10 MB
DEFAULT_FILE_BACKUPS: Final = 5


def _replace_in_text(match: re.Match[str]) -> str:
    if match.group("jwt"):
        return REDACTED
    prefix = match.group("scheme") or match.group("key")
    return f"{prefix}{REDACTED}"


def _might_hold_secret(lowered: str) -> bool:
    # Substring tests are ~10x cheaper than the regex, and almost every string logged (paths,
    # routes, messages) holds none of these: the regex runs only on the few that do.
    return (
        "eyj" in lowered
        or "bearer" in lowered
        or "basic" in lowered
        or "passw" in lowered
        or "secret" in lowered
        or "token" in lowered
        or "key" in lowered
        or "auth" in lowered
        or "cookie" in lowered
        or "credential" in lowered
    )


def redact_text(text: str) -> str:
    """The text with JWTs, Bearer/Basic credentials and `secret=value` pairs replaced."""
    if not _might_hold_secret(text.lower()):
        return text
    return _SECRET_IN_TEXT.sub(_replace_in_text, text)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def is_secret_key(key: object) -> bool:
    """Whether a field of this name holds a secret (the names logged are few: cached). A key
    that is not a string is judged by its text, as the JSON line will show it."""
    return _is_secret_name(key if isinstance(key, str) else str(key))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    # Anything else would be rendered through repr() by the JSON renderer, after this step:
    # render it here so a model's `password='...'` field is scanned too.
    return redact_text(repr(value))


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact secret-named keys and secret-looking strings, recursively."""
    for key, value in event_dict.items():
        if key == "exc_info":
            # Rendered later by the console renderer, through a redacting formatter.
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:  # most values: scanned here, without `_redact_value`'s tests
            event_dict[key] = redact_text(value)
        elif type(value) is not int and type(value) is not float and value is not None:
            event_dict[key] = _redact_value(value)
    return event_dict


def add_request_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the id of the request (or of the request that queued a task)."""
    event_dict.setdefault("request_id", get_request_id())
    return event_dict


class DropAlreadyLoggedExceptions(logging.Filter):
    """Drop a record whose exception the observability middleware already logged.

    Starlette re-raises an unhandled exception after rendering the 500, and uvicorn then logs it
    again as "Exception in ASGI application", without the request id. The middleware logs it
    first, with the request's context, and marks the exception; this filter drops the repeat.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, LOGGED_MARK, False))


def mark_logged(exc: BaseException) -> None:
    setattr(exc, LOGGED_MARK, True)


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is now, not the object it was at configuration time
    (pytest swaps it per test; a handler holding a closed capture stream would fail)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _redacting(
    formatter: Callable[[TextIO, ExcInfo], None],
) -> Callable[[TextIO, ExcInfo], None]:
    def format_exception(sio: TextIO, exc_info: ExcInfo) -> None:
        buffer = io.StringIO()
        formatter(buffer, exc_info)
        sio.write(redact_text(buffer.getvalue()))

    return format_exception


def _drop_missing_request_id(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    # JSON keeps the key (null) so every document has the same shape; a console reader does
    # not need "request_id=None" on every start-up line.
    if event_dict.get("request_id") is None:
        event_dict.pop("request_id", None)
    return event_dict


_second_stamped: tuple[int, str] = (-1, "")


def add_timestamp(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: `timestamp`, ISO 8601 in UTC with microseconds
    (`2026-12-04T12:34:31.323847Z`), the form of structlog's `TimeStamper(fmt="iso", utc=True)`
    (which leaves the fraction out on a whole second; here it is always there), at about a
    quarter of its cost: the date and time of day are formatted once per second."""
    global _second_stamped
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    stamped, text = _second_stamped
    if second != stamped:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_stamped = (second, text)
    event_dict["timestamp"] = f"{text}.{nanos // 1000:06d}Z"
    return event_dict


def render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    """structlog renderer: the event dict as one line of JSON, by pydantic-core's serializer
    (a third of `json.dumps`'s cost; `redact_secrets` has already turned every value into a
    JSON type), ASCII-only like structlog's `JSONRenderer` and compact (no spaces after `:` and
    `,`); anything it cannot serialise is written as its `repr`."""
    try:
        return pydantic_core.to_json(event_dict, fallback=repr, ensure_ascii=True).decode()
    except (ValueError, TypeError):  # bytes that are not UTF-8, say
        return json.dumps(event_dict, default=repr, skipkeys=True, separators=(",", ":"))


# What every line gets, whether it came from structlog, a stdlib logger or a `LineLogger`.
SHARED_PROCESSORS: Final[tuple[Processor, ...]] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    add_request_id,
    add_timestamp,
)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's `ProcessorFormatter`, without its copy of the record for a structlog line
    that carries no exception or stack: the event dict is copied instead, which is all the
    processors change, so other handlers still see the record as it came."""

    def format(self, record: logging.LogRecord) -> str:
        # What structlog's `wrap_for_formatter` (and `LineLogger`) attach; a stdlib record has
        # neither and takes structlog's own road, as does a record carrying an exception or a
        # stack itself (structlog's own lines keep `exc_info` in the event dict).
        method: str | None = getattr(record, "_name", None)
        logger: Any = getattr(record, "_logger", None)
        msg = record.msg
        if not isinstance(msg, dict) or method is None or logger is None:
            return super().format(record)
        if record.exc_info or record.stack_info:
            return super().format(record)
        event: Any = {**msg, "_record": record, "_from_structlog": True}
        logger = self.logger if self.logger is not None else logger
        for processor in self.processors:
            event = processor(logger, method, event)
        return cast(str, event)


def _formatter(json: bool, colors: bool) -> _Formatter:
    renderer: Processor
    if json:
        tail: list[Processor] = [
            structlog.processors.format_exc_info,
            redact_secrets,
            render_json,
        ]
    else:
        # Rich's framed, highlighted tracebacks on a terminal only: rendering one costs about a
        # second of CPU, paid on every logged exception when the output is a file, a pipe or a
        # test's capture, where the plain one reads as well. Locals are off: a frame's locals
        # are where passwords sit.
        traceback: Callable[[TextIO, ExcInfo], None] = (
            RichTracebackFormatter(show_locals=False, color_system="auto")
            if colors
            else plain_traceback
        )
        renderer = ConsoleRenderer(colors=colors, exception_formatter=_redacting(traceback))
        tail = [_drop_missing_request_id, redact_secrets, renderer]
    return _Formatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


_current: tuple[object, ...] | None = None


def configure_logging(
    *,
    level: str | int = "INFO",
    json: bool = False,
    log_file: str | None = None,
    stream: TextIO | None = None,
    file_max_bytes: int = DEFAULT_FILE_MAX_BYTES,
    file_backup_count: int = DEFAULT_FILE_BACKUPS,
) -> None:
    """Route structlog and stdlib logging through one structlog pipeline on the root logger.

    Idempotent: the same arguments again change nothing; new ones replace the handlers this
    function installed before (and only those: handlers others put on the root, such as
    pytest's capture, are left alone).
    """
    global _current
    root = logging.getLogger()
    fingerprint = (level, json, log_file, id(stream), file_max_bytes, file_backup_count)
    ours = [h for h in root.handlers if getattr(h, KIT_HANDLER, False)]
    if fingerprint == _current and ours:
        return

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    target: TextIO = stream if stream is not None else _CurrentStderr()  # type: ignore[assignment]
    console = logging.StreamHandler(target)
    console.setFormatter(_formatter(json, colors=not json and target.isatty()))
    handlers: list[logging.Handler] = [console]
    if log_file:
        file_handler = logging.handlers.RotatingFileHandler(
            log_file,
            maxBytes=file_max_bytes,
            backupCount=file_backup_count,
            encoding="utf-8",
            delay=True,
        )
        file_handler.setFormatter(_formatter(json=True, colors=False))
        handlers.append(file_handler)

    for handler in ours:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        setattr(handler, KIT_HANDLER, True)
        handler.addFilter(DropAlreadyLoggedExceptions())
        root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)

    for name in ADOPTED_LOGGERS:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
    for name in SILENCED_LOGGERS:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
        silenced.setLevel(logging.WARNING)
    _current = fingerprint


class LinesToLog(io.TextIOBase):
    """A text stream that logs each line written to it, for a process whose output must be all
    log lines (JSON in production) while some library prints: Celery's shutdown notice, say.
    Install it with `route_stdout_to_log`; the console handler writes to stderr, so the two
    never feed each other."""

    def __init__(self, logger_name: str = "stdout", level: int = logging.INFO) -> None:
        super().__init__()
        self._logger = logging.getLogger(logger_name)
        self._level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.log(self._level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._logger.log(self._level, self._pending.rstrip())
        self._pending = ""

    def isatty(self) -> bool:
        return False


def route_stdout_to_log(logger_name: str = "stdout") -> LinesToLog:
    """Send what this process prints (`print`, `sys.__stdout__`) through logging, and Python
    warnings too: afterwards every line it writes is a log line. For a server or worker process
    started from the command line in production, not for a library or a test process."""
    stream = LinesToLog(logger_name)
    sys.stdout = stream
    sys.__stdout__ = stream  # type: ignore[assignment,misc]
    logging.captureWarnings(True)
    return stream


def reset_logging() -> None:
    """Remove the handlers `configure_logging` installed and structlog's configuration (tests)."""
    global _current
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, KIT_HANDLER, False)]:
        root.removeHandler(handler)
        handler.close()
    structlog.reset_defaults()
    _current = None


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger that renders through the configured pipeline."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


_LEVEL_METHODS: Final = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


class LineLogger:
    """A logger for a line written on every request (the access line): the same document, on
    the same handlers, as `get_logger(name).log(level, event, **fields)`, at a fraction of the
    cost.

    It runs the shared processors itself and hands one `LogRecord` to the stdlib logger, so
    level filtering, handlers, `caplog` and the redaction all apply. What it skips is the
    bound logger's own processor chain and the stdlib caller search (structlog walks the stack
    to find the first frame outside logging): the record names `source` and `function` instead.
    The record is made by `Logger.makeRecord`, so a record factory (`logging.setLogRecordFactory`,
    as tracing integrations install) applies. Fields are logged as given: no positional
    arguments, no `exc_info` (log an exception with `get_logger`).
    """

    def __init__(self, name: str, source: str = "", function: str | None = None) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._source = source or name
        self._function = function

    def enabled_for(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        """Log `event` with `fields` (the dict becomes the line's; pass a fresh one)."""
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        method = _LEVEL_METHODS.get(level) or logging.getLevelName(level).lower()
        fields["event"] = event
        event_dict: Any = fields
        for processor in SHARED_PROCESSORS:
            event_dict = processor(logger, method, event_dict)
        record = logger.makeRecord(
            self.name, level, self._source, 0, event_dict, (), None, func=self._function
        )
        record._logger = logger  # read by ProcessorFormatter
        record._name = method
        logger.handle(record)
