"""structlog set-up: JSON lines in production, readable lines on a terminal."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog


def configure(*, json: bool | None = None, level: str | None = None) -> None:
    """Configure structlog (and stdlib logging) once per process.

    ``json=None`` picks JSON unless stderr is a terminal. SEKISHO_LOG_LEVEL and
    SEKISHO_LOG_FORMAT (json|console) override from the environment.
    """
    fmt = os.environ.get("SEKISHO_LOG_FORMAT")
    if json is None:
        json = fmt == "json" if fmt else not sys.stderr.isatty()
    name = (level or os.environ.get("SEKISHO_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelNamesMapping().get(name, logging.INFO)
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors += [structlog.processors.format_exc_info,
                       structlog.processors.JSONRenderer(ensure_ascii=False)]
    else:
        if numeric > logging.DEBUG:
            processors.append(_summarize_exc_info)  # a terminal user gets one line, not a trace
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=LineLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(name)s: %(message)s")


class LineLogger:
    """Writes each log line, newline included, in one ``write``.

    The daemon and its worker processes share stderr (one file or pipe). structlog's
    PrintLogger uses ``print``, which writes the text and the newline separately: another
    process's line then lands between the two and two JSON lines become one line no
    reader can parse (a log shipper drops it; a watcher misses "smtp.listening"). One
    write(2) of a whole line with O_APPEND, or of up to PIPE_BUF bytes on a pipe, is not
    split by another process's.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()
        # a worker forked while another thread held the lock must not inherit it held
        os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self) -> None:
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class LineLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._logger = LineLogger(file)

    def __call__(self, *args: Any) -> LineLogger:
        return self._logger


def _summarize_exc_info(_logger: Any, _name: str,
                        event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc_info = event.pop("exc_info", None)
    if exc_info:
        exc = sys.exc_info()[1] if exc_info is True else (
            exc_info if isinstance(exc_info, BaseException) else None)
        if exc is not None:
            event["error"] = type(exc).__name__
    return event
