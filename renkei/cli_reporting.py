"""``renkei trace DEAL_ID`` and ``renkei search`` — the command-line twins of the console's trace and search
pages. They read the latest reporting snapshot and the audit log in the state store (run ``renkei run
reporting`` first). Japanese labels, yen as ``¥1,234,567``, dates and times in Asia/Tokyo; a 個人事業者's
name is masked and personal values in audit changes are masked (:func:`store.repo.mask_changes`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from renkei.domain.money import format_yen
from renkei.store.reporting import KIND_LABELS_JA, SEARCH_KINDS, ReportStore, Trace

TAX_LABELS_JA = {"standard_10": "10%", "reduced_8": "8%（軽減）", "exempt": "非課税", "non_taxable": "不課税"}
STATUS_LABELS_JA = {"open": "未入金", "paid": "入金済", "cancelled": "取消"}


def tokyo(dt: datetime | date | None) -> str:
    """``2026-12-05 09:30`` (Asia/Tokyo) for a timestamp, ``2026-12-05`` for a business date, ``-`` for none."""
    from renkei.domain.dates import stored_in_tokyo

    if dt is None:
        return "-"
    if isinstance(dt, datetime):
        return stored_in_tokyo(dt).strftime("%Y-%m-%d %H:%M")
    return dt.isoformat()


def _store() -> ReportStore:
    from renkei.settings import get_settings
    from renkei.store.repo import Store

    return ReportStore(Store.open(get_settings().database_url))


def _changes(ch: dict[str, Any]) -> str:
    parts = []
    for k, v in (ch or {}).items():
        if isinstance(v, int) and not isinstance(v, bool) and k in ("amount", "total", "fee", "applied", "net"):
            v = format_yen(v)
        parts.append(f"{k}={v}")
    return ", ".join(parts)[:160]


def print_trace(t: Trace, console: Console) -> None:
    if not t.found:
        console.print(f"商談 {t.deal_id} は見つかりません（最新のスナップショットにも監査ログにもありません）")
        return
    d = t.deal
    console.print(f"[bold]商談 {t.deal_id}[/bold] {d.get('name') or ''}")
    if d:
        console.print(f"  金額 {format_yen(d.get('amount') or 0)}（税抜） ステージ {d.get('stage')} "
                      f"受注日 {tokyo(d.get('close_date'))} 入金状況(CRM) {d.get('payment_status') or '-'}")
    c = t.company
    if c:
        console.print(f"[bold]取引先[/bold] {c.get('name') or '-'}"
                      f"（CRM {c.get('crm_id') or '-'} / ERP {c.get('erp_id') or '-'}）")
    for inv in t.invoices:
        console.print(f"[bold]請求書[/bold] {inv.number or inv.erp_id} 請求日 {tokyo(inv.issue_date)} "
                      f"支払期日 {tokyo(inv.due_date)} 税抜 {format_yen(inv.subtotal)} 請求金額 {format_yen(inv.total)} "
                      f"未入金 {format_yen(inv.outstanding)} [{STATUS_LABELS_JA.get(inv.status, inv.status)}]")
        for cat, sub, tax in inv.rate_totals:
            console.print(f"    税率 {TAX_LABELS_JA.get(cat, cat)}: 対価 {format_yen(sub)} 消費税 {format_yen(tax)}")
    for p in t.payments:
        what = f"入金 {format_yen(p.amount)}" if p.amount else f"振込手数料 {format_yen(p.fee)}"
        console.print(f"[bold]入金[/bold] {tokyo(p.day)} {what}（請求書 {p.invoice_erp_id}, 入金ID {p.id}）")
    for j in t.journals:
        console.print(f"[bold]売上按分[/bold] {j.key} {j.period_start}〜{j.period_end} {format_yen(j.amount)}")
    if t.events:
        table = Table(title="監査ログ", show_lines=False)
        for col in ("日時", "操作", "対象", "実行者", "承認者", "内容"):
            table.add_column(col)
        for e in t.events:
            table.add_row(tokyo(e.at), e.action, f"{e.entity} {e.entity_key}", e.actor, e.approved_by or "-",
                          _changes(e.changes))
        console.print(table)
    if t.approvers:
        console.print(f"承認者: {', '.join(t.approvers)}")
    console.print(f"（スナップショット {tokyo(t.snapshot_taken_at)} 時点）")


def register(app: typer.Typer, console: Console, err: Console) -> None:
    """Add ``trace`` and ``search`` to the ``renkei`` app."""

    @app.command("trace")
    def trace(deal_id: str = typer.Argument(..., help="CRM deal id"),
              as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
        """Deal → company/partner → invoice (per-rate tax) → payments and fees → revenue journals, with every
        audit event and who approved (from the latest reporting snapshot and the audit log)."""
        t = _store().trace(deal_id)
        if as_json:
            typer.echo(json.dumps(t.to_json(), ensure_ascii=False, default=str, indent=2))
        else:
            print_trace(t, console)
        if not t.found:
            raise typer.Exit(1)

    @app.command("search")
    def search(date_from: Optional[str] = typer.Option(None, "--from", help="from date YYYY-MM-DD (Asia/Tokyo)"),
               date_to: Optional[str] = typer.Option(None, "--to", help="to date YYYY-MM-DD, inclusive"),
               min_amount: Optional[int] = typer.Option(None, "--min", help="minimum amount (yen)"),
               max_amount: Optional[int] = typer.Option(None, "--max", help="maximum amount (yen)"),
               counterparty: Optional[str] = typer.Option(None, "--counterparty", help="取引先名 (part of it)"),
               kind: list[str] = typer.Option([], "--kind", help=f"one of {', '.join(SEARCH_KINDS)} (repeatable)"),
               limit: int = typer.Option(500, "--limit"),
               as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
        """Search deals, invoices and payments by date range, amount range and counterparty."""
        try:
            f = date.fromisoformat(date_from) if date_from else None
            t = date.fromisoformat(date_to) if date_to else None
            hits = _store().search(f, t, min_amount, max_amount, counterparty, tuple(kind) or SEARCH_KINDS,
                                   limit=limit)
        except ValueError as exc:
            err.print(f"✗ {exc}", markup=False)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps([{**h.__dict__, "day": h.day.isoformat() if h.day else None} for h in hits],
                                  ensure_ascii=False, indent=2))
            return
        table = Table(title=f"検索結果 {len(hits)} 件")
        for col in ("種別", "日付", "金額", "取引先", "商談", "内容", "ID"):
            table.add_column(col, justify="right" if col == "金額" else "left")
        for h in hits:
            table.add_row(KIND_LABELS_JA.get(h.kind, h.kind), tokyo(h.day), format_yen(h.amount), h.counterparty or "-",
                          h.deal_id or "-", h.label, h.key)
        console.print(table)


def overview_table(snapshot: Any) -> Any:
    """The overview figures of a snapshot (a rich renderable): one row per month (見込 weighted / unweighted,
    請求, 入金) and the totals, then lines for receivables aging, gross margin and drift counts."""
    from rich.console import Group
    from rich.text import Text

    from renkei.domain.reporting import AGING_LABELS_JA, DRIFT_LABELS_JA

    table = Table(title=f"経営サマリー（{snapshot.as_of.isoformat()} 時点, Asia/Tokyo）")
    for col in ("月", "見込（加重）", "見込（総額）", "請求額", "入金額"):
        table.add_column(col, justify="left" if col == "月" else "right")
    for m in snapshot.months:
        table.add_row(m.month, format_yen(m.pipeline_weighted), format_yen(m.pipeline_unweighted),
                      format_yen(m.invoiced), format_yen(m.collected))
    tot = snapshot.totals()
    table.add_row("合計", format_yen(tot["pipeline_weighted"]), format_yen(tot["pipeline_unweighted"]),
                  format_yen(tot["invoiced"]), format_yen(tot["collected"]), style="bold")
    aging = " / ".join(f"{AGING_LABELS_JA[b.label]} {format_yen(b.amount)}" for b in snapshot.aging)
    drift = " / ".join(f"{DRIFT_LABELS_JA.get(c.kind, c.kind)} {c.count}" for c in snapshot.drift_counts)
    margin = sum(c.gross_margin for c in snapshot.customers)
    return Group(table, Text(f"売掛金 {format_yen(tot['open_receivable'])}（{aging}）"),
                 Text(f"粗利 {format_yen(margin)}（{len(snapshot.customers)} 社）"), Text(f"差異: {drift}"))
