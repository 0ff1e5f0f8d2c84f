"""Every log record is masked where it is made — whatever logger or handler — and the masker leaves
its own hints readable while secrets stay redacted."""

from __future__ import annotations

import io
import logging

from renkei.connectors.http import register_secret
from renkei import logmask


def test_a_parameter_hint_is_not_a_secret_but_a_token_still_is():
    hint = "no HubSpot token: pass token=/token_provider= or set RENKEI_HUBSPOT_TOKEN"
    assert logmask.mask_text(hint) == hint
    assert "abc123secretvalue" not in logmask.mask_text("GET /x?access_token=abc123secretvalue&y=1")
    assert "s3cr3t-value" not in logmask.mask_text("refresh_token=s3cr3t-value")
    register_secret("registered-secret-987")
    assert "registered-secret-987" not in logmask.mask_text("token=/token_provider= registered-secret-987")


def test_records_of_any_logger_and_handler_are_masked_even_added_later():
    logmask.install()
    logmask.install()  # idempotent
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after install(), no filter of ours
    logger = logging.getLogger("some.library.nobody.configured")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("contact %s tel %s", "hanako.yamada@example.co.jp", "090-1234-5678")
        try:
            raise ValueError("bad address taro.suzuki@example.com")
        except ValueError:
            logger.exception("failed for %s", "03-9876-5432")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hanako.yamada" not in out and "h***@example.co.jp" in out
    assert "090-1234-5678" not in out and "***-5678" in out
    assert "taro.suzuki" not in out and "03-9876-5432" not in out  # the traceback too
    assert "ValueError" in out
