"""The broker's log lines: every process (the supervisor, each worker, uvicorn's own loggers) writes one
record per line to standard error, as text or as JSON (`veil broker serve --log-format`).

A record's structured fields (`log.info("request refused", extra={"code": ..., "status": ...})`) are kept:
as `key=value` after the message in text, as members of the object in JSON. Nothing here adds a field a
caller did not pass, so what the code logs is what is written (no request bodies, keys or tokens are
logged anywhere in the broker)."""

from __future__ import annotations

import logging
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message",
                                                                        "taskName"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a caller passed with `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """`time level logger message key=value …`: readable, with the structured fields kept."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = fields(record)
        return line + "".join(f" {k}={v}" for k, v in extra.items()) if extra else line


def log_config(fmt: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` document for uvicorn.Config(log_config=...): uvicorn applies it in the
    supervisor and in every worker."""
    formatter = ({"()": "pythonjsonlogger.json.JsonFormatter", "fmt": "%(levelname)s %(name)s %(message)s",
                  "rename_fields": {"levelname": "level", "name": "logger"}, "timestamp": "time",   # ISO 8601, UTC
                  "reserved_attrs": sorted(_STANDARD)}
                 if fmt == "json" else {"()": TextFormatter})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"broker": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "broker",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {**{name: {"handlers": [], "level": "INFO", "propagate": True}
                       for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
                    "alembic": {"level": "WARNING"}},         # its per-start chatter; migrations are the CLI's
    }
