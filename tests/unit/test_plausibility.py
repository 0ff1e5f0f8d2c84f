"""Plausibility rules (domain/plausibility.py): worked examples."""

from datetime import date

import pytest

from renkei.domain.plausibility import (EMAIL_INVALID, MARKUP_IN_TEXT, PlausibilityRules, amount_problem, date_problem,
                                 email_problem, markup_problem, text_findings)

TODAY = date(2026, 12, 5)


@pytest.mark.parametrize("value", ["not-an-email@@", "a@b", "a..b@x.com", "@example.com", "keiri@", "a b@x.jp",
                                   "x@-bad-.jp", "x" * 65 + "@example.com", "経理@example.jp"])
def test_invalid_emails(value):
    assert email_problem(value) == "not a valid e-mail address"


@pytest.mark.parametrize("value", ["keiri@example.co.jp", "a.b+c@sub.example.com", "x@日本.jp", None, "", "  "])
def test_valid_or_empty_emails(value):
    assert email_problem(value) is None


@pytest.mark.parametrize("value,what", [
    ("<b>株式会社テスト</b>", "HTML tag"), ("<script>alert(1)</script>", "HTML tag"), ("<img src=x onerror=y>", "HTML tag"),
    ("株式会社&amp;商事", "HTML entity"), ("[株式会社](http://x)", "markdown link"), ("**太字**商事", "markdown emphasis"),
    ("# 見出し", "markdown heading"), ("`rm -rf`", "markdown code"), ("javascript:alert(1)", "script URL"),
    ('=HYPERLINK("http://x")', "spreadsheet formula"), ("@SUM(A1)", "spreadsheet formula"),
])
def test_markup_found(value, what):
    assert markup_problem(value) == what


@pytest.mark.parametrize("value", ["株式会社A&B", "A<B社", "株式会社 #1", "山田・佐藤法律事務所", "(株)テスト", "-"])
def test_ordinary_names_pass(value):
    assert markup_problem(value) is None


def test_date_window():
    assert "3650 days before" in date_problem(date(1900, 1, 1), TODAY)
    assert "366 days after" in date_problem(date(2100, 1, 1), TODAY)
    assert date_problem(date(2016, 12, 8), TODAY) is None  # 3649 days back
    assert date_problem(date(2027, 12, 6), TODAY) is None  # 366 days ahead
    assert date_problem(date(2027, 12, 7), TODAY) is not None
    assert date_problem(None, TODAY) is None
    assert date_problem(date(2026, 1, 1), TODAY, PlausibilityRules(date_past_days=30)) is not None


def test_amounts():
    assert amount_problem(0) == "total is ¥0"
    assert amount_problem(-1100) == "total is negative (¥-1,100)"
    assert amount_problem(1) is None
    assert amount_problem(0, PlausibilityRules(allow_zero_total=True)) is None
    assert amount_problem(-1, PlausibilityRules(allow_negative_total=True)) is None


def test_text_findings_one_per_field():
    found = text_findings({"name": "<i>x</i>", "email": "bad@@", "billing_email": "ok@example.jp", "city": None})
    assert [(f.code, f.field) for f in found] == [(MARKUP_IN_TEXT, "name"), (EMAIL_INVALID, "email")]
    assert text_findings({"name": "<i>x</i>"}, PlausibilityRules(check_markup=False)) == []
