import logging

from renkei.connectors.http import register_secret
from renkei.logmask import MaskingFilter, mask_text


def test_personal_data_and_secrets_are_masked():
    register_secret("freee-refresh-abcdef123456")
    line = ("partner 山田商事 billing keiri.tanaka@yamada.co.jp tel 03-1234-5678 / +81 90 1234 5678 "
            "Authorization: Bearer pat-na1-11111111-2222 refresh freee-refresh-abcdef123456 amount 110000")
    out = mask_text(line)
    assert "keiri.tanaka" not in out and "k***@yamada.co.jp" in out
    assert "03-1234-5678" not in out and "***-5678" in out
    assert "90 1234 5678" not in out
    assert "pat-na1-11111111-2222" not in out and "freee-refresh-abcdef123456" not in out
    assert "山田商事" in out and "110000" in out  # business data stays readable


def test_filter_rewrites_records_with_args():
    rec = logging.LogRecord("renkei", logging.INFO, __file__, 1, "mail %s", ("hanako@example.com",), None)
    MaskingFilter().filter(rec)
    assert rec.getMessage() == "mail h***@example.com"
