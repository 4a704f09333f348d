"""The HTTP access log: on stderr, never stdout, and never with a query string's values.

uvicorn's default configuration writes its access log to stdout with the full request target,
so a token sent as ``?token=...`` ended up in whatever collects the service's stdout. Here the
access log goes to stderr like every other log line, and a filter on the access logger rewrites
each query parameter's value to ``<redacted>`` (names are kept: ``?timeout=<redacted>``) before
any handler sees the record.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "<redacted>"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")


def redact_target(target: str) -> str:
    """A request target with every query parameter value replaced."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        # a name is kept only when it looks like one; a bare word may itself be the secret
        parts.append(f"{name}={REDACTED}" if eq and _NAME.match(name) else REDACTED)
    return path + "?" + "&".join(parts)


class RedactQuery(logging.Filter):
    """Redacts the request target of uvicorn's access records (its third argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the access log on stderr and redacted."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_query": {"()": RedactQuery}},
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact_query"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {
                "handlers": ["access"],
                "level": level.upper(),
                "propagate": False,
                "filters": ["redact_query"],
            },
        },
    }
