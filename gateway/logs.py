"""Configure logging as text for people or as one JSON object per line."""

from __future__ import annotations

import contextvars
import logging
import sys
import time

import orjson

# attributes that every LogRecord has; anything else was passed in `extra`
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# the id of the request being handled, so that every line logged for it names it
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object, with any `extra` fields kept."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            # the record is formatted in the thread that logged it, inside its request
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def configure_logging(log_format: str, level: str) -> None:
    """Send the gateway's logs to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # alembic announces each of its plugins at info level whenever it loads
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # the pool logs every checkout and return at info level
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
