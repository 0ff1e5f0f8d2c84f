"""The console's pages compared with figures a test computed on its own (e.g. from the sandboxes' stores):

    from tests.console.pagecheck import assert_console_shows
    assert_console_shows(world.rt.store, months=exp["months"], aging=exp["aging"])

``months``: ``{"YYYY-MM": (pipeline weighted, pipeline unweighted, invoiced, collected)}``; ``aging``:
``{bucket: outstanding}``. Every month the page lists must be expected and the other way round; amounts
are compared as the page prints them (``¥1,234,567``)."""

from __future__ import annotations

from typing import Any, Mapping

from tests.console import htmltables as ht


def _yen(n: int) -> str:
    return f"-¥{-n:,}" if n < 0 else f"¥{n:,}"


def assert_console_shows(store: Any, *, months: Mapping[str, tuple[int, int, int, int]] | None = None,
                         aging: Mapping[str, int] | None = None) -> None:
    from fastapi.testclient import TestClient

    from renkei.console import create_app

    with TestClient(create_app(store, approvals=lambda: [])) as client:
        if months is not None:
            html = client.get("/").text
            shown = {r["month"]: r["cells"][1:] for r in ht.rows(html, "months")}
            assert shown == {m: [_yen(v) for v in vals] for m, vals in months.items()}, shown
            totals = [sum(v[i] for v in months.values()) for i in range(4)]
            assert [ht.text(html, f"total-{k}") for k in ("pipeline-weighted", "pipeline-unweighted", "invoiced",
                                                          "collected")] == [_yen(t) for t in totals]
        if aging is not None:
            html = client.get("/aging").text
            shown_aging = {r["bucket"]: r["cells"][2] for r in ht.rows(html, "aging")}
            assert shown_aging == {k: _yen(v) for k, v in aging.items()}, shown_aging
            assert ht.text(html, "aging-total") == _yen(sum(aging.values()))
