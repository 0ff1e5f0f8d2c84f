"""Text shown in messages and artifacts never renders as markup; protected (hashed) personal values
compare under the merge's own equality."""

from __future__ import annotations

from renkei.domain.normalise import safe_text
from renkei.domain.ownership import comparable, is_protected, plan_merge, protect_value, reveal_protected

KEY = b"k" * 32


def test_markup_is_shown_as_written_not_rendered():
    assert safe_text("<b>株式会社X</b>") == "&lt;b&gt;株式会社X&lt;/b&gt;"
    assert safe_text("[株式会社](http://x)") == "\\[株式会社\\]\\(http://x\\)"
    assert safe_text("**太字**\n# 見出し") == "\\*\\*太字\\*\\* \\# 見出し"
    assert safe_text("株式会社山田商事") == "株式会社山田商事"  # plain names untouched
    assert len(safe_text("あ" * 500)) == 200


def test_protected_values_follow_the_merge_equality():
    a = protect_value("phone", "03-1234-5678", KEY)
    assert is_protected(a) and "1234" not in a
    assert protect_value("phone", "+81 3 1234 5678", KEY) == a  # the same number, formatted otherwise
    assert protect_value("billing_email", "Keiri@Example.co.jp", KEY) == protect_value(
        "billing_email", "keiri@example.co.jp", KEY)
    assert protect_value("phone", "03-1234-5678", b"other key") != a
    assert protect_value("phone", None, KEY) is None and protect_value("phone", "", KEY) == ""
    assert comparable("phone", a) == a  # compared as it is
    assert reveal_protected("phone", a, ["0312345678"], KEY) == "0312345678"


def test_three_way_merge_sees_changes_against_a_hashed_base():
    """A base whose personal value is a hash: the side still holding it is unchanged, the other changed."""
    old = protect_value("phone", "03-1111-1111", KEY)
    base = {"crm": {"phone": old}, "erp": {"phone": old}}
    crm, erp = {"phone": "03-2222-2222"}, {"phone": "03-1111-1111"}
    revealed = {s: {"phone": reveal_protected("phone", v["phone"], [crm["phone"], erp["phone"]], KEY)}
                for s, v in base.items()}
    plan = plan_merge(revealed, crm, erp)  # default policy: phone owned by the CRM
    assert plan.updates_to_erp == {"phone": "03-2222-2222"} and not plan.conflicts
