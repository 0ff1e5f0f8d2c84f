"""Log masking: secrets and personal data never reach a log line (console or Prefect's API handler).

``install()`` adds :class:`MaskingFilter` to the handlers of the root and Prefect loggers; flows call it
at start. Secrets are removed by :func:`connectors.http.redact` (bearer tokens, ``*_token=``, JSON
secret fields and every registered secret value); e-mail addresses and phone numbers are masked.
"""

from __future__ import annotations

import logging
import re

from connectors.http import redact

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
PHONE = re.compile(r"(?<![\d-])(?:\+81[-\s]?|0)\d{1,4}[-\s(]?\d{1,4}[-\s)]?\d{3,4}(?![\d-])")


def mask_text(text: str) -> str:
    """``taro@example.co.jp`` → ``t***@example.co.jp``; ``03-1234-5678`` → ``***-5678``; secrets → ``***REDACTED***``."""
    s = redact(text)
    s = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", s)
    return PHONE.sub(lambda m: "***-" + re.sub(r"\D", "", m.group(0))[-4:], s)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the record
            message = str(record.msg)
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


_FILTER = MaskingFilter()


def install() -> None:
    """Attach the filter to every handler of the root and Prefect loggers (idempotent)."""
    names = ["", "prefect", "prefect.flow_runs", "prefect.task_runs", "renkei"]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
