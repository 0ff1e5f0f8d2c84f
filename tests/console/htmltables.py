"""Read what a console page shows: table rows (cell texts and the row's data-* attributes), an element's text
by id, and the chart data a page embeds (``<script type="application/json" id=...>``). Standard library only."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.by_id: dict[str, str] = {}
        self._table: str | None = None
        self._section: str | None = None
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None
        self._open_ids: list[tuple[str, str, int]] = []  # (id, tag, depth)
        self._texts: dict[str, list[str]] = {}
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag not in ("meta", "link", "input", "br", "img"):
            self._depth += 1
            if "id" in a:
                self._open_ids.append((a["id"], tag, self._depth))
                self._texts[a["id"]] = []
        if tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag in ("thead", "tbody", "tfoot") and self._table:
            self._section = tag
        elif tag == "tr" and self._table:
            self._row = {"section": self._section, "cells": [],
                         **{k[5:]: v for k, v in a.items() if k.startswith("data-")}}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if tag not in ("meta", "link", "input", "br", "img"):
            while self._open_ids and self._open_ids[-1][2] >= self._depth:
                ident, _, _ = self._open_ids.pop()
                self.by_id[ident] = "".join(self._texts[ident])
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for ident, _, _ in self._open_ids:
            self._texts[ident].append(data)


def parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


def rows(html: str, table_id: str, section: str = "tbody") -> list[dict[str, Any]]:
    """The rows of ``<table id=table_id>`` in ``section`` (thead | tbody | tfoot)."""
    return [r for r in parse(html).tables.get(table_id, []) if r["section"] == section]


def text(html: str, element_id: str) -> str:
    return " ".join(parse(html).by_id.get(element_id, "").split())


def chart(html: str, data_id: str) -> dict[str, Any]:
    return json.loads(parse(html).by_id[data_id])
