"""Structured logs: one line per record, a dotted key then the facts from ``extra``.

    logger.info("webhooks.intake.stored", extra={"shop": domain, "topic": topic})
    → 2026-11-23T19:00:00Z INFO shopapp.webhooks webhooks.intake.stored shop=a.myshopify.com …

Keys that could carry a secret or a shopper's data are masked whatever a caller passes.
"""

import logging
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Never printed, whatever a caller passes in ``extra``.
_MASKED = {
    "access_token",
    "refresh_token",
    "token",
    "secret",
    "password",
    "authorization",
    "email",
    "phone",
    "address",
    "id_token",
    "subject_token",
    "code",
    "client_secret",
}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [when, record.levelname, record.name, record.getMessage()]
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            shown = "[masked]" if key.lower() in _MASKED else value
            parts.append(f"{key}={shown}")
        line = " ".join(str(p) for p in parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
