"""Log masking: secrets and personal data never reach a log line (console or Prefect's API handler).

``install()`` masks every log record where it is made (a wrapped ``logging`` record factory: whatever
logger, handler or process configuration comes later, Prefect's API handler included) and also adds
:class:`MaskingFilter` to the handlers of the root and Prefect loggers; flows call it at start. Secrets
are removed by :func:`connectors.http.redact` (bearer tokens, ``*_token=``, JSON secret fields and every
registered secret value); e-mail addresses and phone numbers are masked, in the message and in a
traceback. A parameter hint such as ``pass token=/token_provider=`` names parameters, it holds no
secret: it is left readable. An exception marked ``quiet_traceback`` (``renkei.doctor.ConfigProblem``:
one line with its fix) is logged without its traceback.
"""

from __future__ import annotations

import logging
import re

from renkei.connectors.http import redact

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
PHONE = re.compile(r"(?<![\d-])(?:\+81[-\s]?|0)\d{1,4}[-\s(]?\d{1,4}[-\s)]?\d{3,4}(?![\d-])")


# "name=/other_name=" lists parameter names (an error's hint), it is not an assignment of a secret
_HINT = re.compile(r"\b[A-Za-z_]\w*=(?:/[a-z][a-z_]*=)+(?=[\s,.;:)]|$)")


def _redact(text: str) -> str:
    out, last = [], 0
    for m in _HINT.finditer(text):
        out.append(redact(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(redact(text[last:]))
    return "".join(out)


def mask_text(text: str) -> str:
    """``taro@example.co.jp`` → ``t***@example.co.jp``; ``03-1234-5678`` → ``***-5678``; secrets → ``***REDACTED***``."""
    s = _redact(text)
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


def _quiet(exc_info: object) -> bool:
    """An exception that is its own one-line message (a configuration problem and its fix): its
    traceback would only bury that line."""
    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
    return bool(getattr(exc, "quiet_traceback", False))


def _mask_record(record: logging.LogRecord) -> logging.LogRecord:
    _FILTER.filter(record)
    if record.exc_info and _quiet(record.exc_info):
        record.exc_info, record.exc_text = None, None
    if record.exc_info and not record.exc_text:
        try:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        except Exception:  # noqa: BLE001 - a traceback that cannot be formatted is left to the handler
            pass
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    return record


def _masking_factory(previous):
    def factory(*args, **kwargs):
        return _mask_record(previous(*args, **kwargs))

    factory._renkei_masking = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Mask every log record as it is made, and attach the filter to every handler of the root and
    Prefect loggers (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "_renkei_masking", False):
        logging.setLogRecordFactory(_masking_factory(current))
    names = ["", "prefect", "prefect.flow_runs", "prefect.task_runs", "renkei"]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
