"""Generate ``docs/data-dictionary.md`` from the canonical model's field metadata."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from renkei.domain.model import CANONICAL_MODELS

DATA_DICTIONARY_PATH = Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md"

OWNER_LABEL = {"crm": "CRM", "erp": "ERP", "both": "both (3-way)", "renkei": "Renkei"}


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        base = _type_name(args[0])
        meta = " ".join(str(m) for m in args[1:] if "Validator" not in type(m).__name__)
        return base if not meta else base
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [_type_name(a) for a in args if a is not type(None)]
        opt = " | None" if type(None) in args else ""
        return " | ".join(parts) + opt
    if origin in (list, tuple, set):
        return f"list[{', '.join(_type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _describe_type(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    text = _type_name(field.annotation)
    hints = " ".join(str(m) for m in field.metadata)
    if "BeforeValidator(func=<function _strict_yen" in hints or name in {"amount", "total", "fee", "subtotal", "tax"}:
        if text.startswith("int"):
            text = text.replace("int", "yen (int)", 1)
    return text


def render() -> str:
    lines = [
        "# Data dictionary",
        "",
        "Generated from `domain/model.py` by `renkei docs` — do not edit by hand; a test fails when it is stale.",
        "",
        "Owner: the system whose value wins by default (policy `[ownership.fields]` can change it for customer",
        "fields). *both (3-way)* fields are merged against the last synced base snapshot. Money is integer yen.",
        "",
    ]
    for model in CANONICAL_MODELS:
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines += [f"## {model.__name__}", "", doc, "", "| field | type | meaning | owner | HubSpot | freee |",
                  "|---|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            owner = OWNER_LABEL.get(str(extra.get("owner", "")), "—")
            cells = [f"`{name}`", _describe_type(model, name).replace("|", "\\|"),
                     (field.description or "").replace("|", "\\|"), owner,
                     str(extra.get("hubspot") or "—").replace("|", "\\|"),
                     str(extra.get("freee") or "—").replace("|", "\\|")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
