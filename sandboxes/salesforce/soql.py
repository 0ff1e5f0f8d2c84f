"""A SOQL subset: parser and evaluator over the sandbox store.

Supported::

    SELECT field, Rel.Field, Rel.Rel.Field, COUNT(), (SELECT … FROM ChildRelationship [WHERE …] [ORDER BY …] [LIMIT n])
    FROM Object
    [WHERE cond]        cond: expr (AND|OR expr)*, NOT expr, ( cond ), field op value
                        op: = != <> < > <= >= LIKE IN (…) NOT IN (…)
                        value: 'string' (backslash escapes), number, true/false, null,
                               date 2026-12-01, datetime 2026-12-01T00:00:00Z / +09:00 (unquoted),
                               TODAY, YESTERDAY, TOMORROW
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], …]
    [LIMIT n] [OFFSET n]

Errors are Salesforce's: ``MALFORMED_QUERY`` (syntax), ``INVALID_TYPE`` (unknown object), ``INVALID_FIELD``
(unknown column, with the caret message; a quoted value for a date/datetime field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .errors import SFError
from .schema import Field, SObject, normalise_id

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
""", re.X)

KEYWORDS = {"select", "from", "where", "and", "or", "not", "like", "in", "order", "by", "asc", "desc", "nulls",
            "first", "last", "limit", "offset", "null", "true", "false", "includes", "excludes", "group", "having",
            "with", "for", "using"}
DATE_LITERALS = {"today": 0, "yesterday": -1, "tomorrow": 1}


@dataclass
class Tok:
    kind: str
    value: str
    pos: int


def tokenize(q: str) -> list[Tok]:
    out, i = [], 0
    while i < len(q):
        m = _TOKEN.match(q, i)
        if not m:
            raise SFError(400, "MALFORMED_QUERY", f"unexpected token: '{q[i:i + 10].split()[0] if q[i:].split() else q[i]}'")
        kind = m.lastgroup
        if kind != "ws":
            out.append(Tok(kind, m.group(), i))
        i = m.end()
    out.append(Tok("eof", "", len(q)))
    return out


# --------------------------------------------------------------------------------------------------- AST


@dataclass
class Path:
    parts: list[str]  # ["Account", "Name"]: relationships then field
    pos: int = 0


@dataclass
class Compare:
    path: Path
    op: str
    value: Any  # literal, list of literals for IN
    raw: Tok | None = None


@dataclass
class BoolOp:
    op: str  # and / or / not
    args: list[Any]


@dataclass
class Query:
    obj: str
    fields: list[Any] = field(default_factory=list)  # Path | Query (subquery) | "COUNT()"
    where: Any = None
    order: list[tuple[Path, bool, bool | None]] = field(default_factory=list)  # (path, desc, nulls_last)
    limit: int | None = None
    offset: int | None = None
    count: bool = False
    text: str = ""


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def kw(self, word: str) -> bool:
        t = self.peek()
        if t.kind == "ident" and t.value.lower() == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            self.fail()

    def expect(self, kind: str, value: str | None = None) -> Tok:
        t = self.peek()
        if t.kind != kind or (value is not None and t.value != value):
            self.fail()
        self.i += 1
        return t

    def fail(self, tok: Tok | None = None):
        t = tok or self.peek()
        if t.kind == "eof":
            raise SFError(400, "MALFORMED_QUERY", "unexpected token: <EOF>")
        raise SFError(400, "MALFORMED_QUERY", f"unexpected token: '{t.value}'")

    def parse(self) -> Query:
        q = self.select()
        if self.peek().kind != "eof":
            self.fail()
        q.text = self.text
        return q

    def select(self) -> Query:
        self.expect_kw("select")
        items: list[Any] = []
        count = False
        while True:
            t = self.peek()
            if t.kind == "punct" and t.value == "(":
                self.i += 1
                sub = self.select()
                self.expect("punct", ")")
                items.append(sub)
            elif t.kind == "ident" and t.value.lower() == "count" and self.peek(1).value == "(":
                self.i += 2
                self.expect("punct", ")")
                count = True
            elif t.kind == "ident" and t.value.lower() not in ("from",):
                self.i += 1
                items.append(Path(t.value.split("."), t.pos))
            else:
                self.fail()
            if self.peek().kind == "punct" and self.peek().value == ",":
                self.i += 1
                continue
            break
        self.expect_kw("from")
        obj = self.expect("ident")
        q = Query(obj.value, items, count=count)
        if self.kw("where"):
            q.where = self.cond()
        for word in ("group", "having"):
            if self.peek().kind == "ident" and self.peek().value.lower() == word:
                raise SFError(400, "MALFORMED_QUERY", f"{word.upper()} BY is not supported by the sandbox")
        if self.kw("order"):
            self.expect_kw("by")
            while True:
                t = self.expect("ident")
                desc = False
                if self.kw("desc"):
                    desc = True
                else:
                    self.kw("asc")
                nulls_last = None
                if self.kw("nulls"):
                    if self.kw("last"):
                        nulls_last = True
                    else:
                        self.expect_kw("first")
                        nulls_last = False
                q.order.append((Path(t.value.split("."), t.pos), desc, nulls_last))
                if self.peek().kind == "punct" and self.peek().value == ",":
                    self.i += 1
                    continue
                break
        if self.kw("limit"):
            q.limit = int(self.expect("number").value)
        if self.kw("offset"):
            q.offset = int(self.expect("number").value)
        return q

    def cond(self) -> Any:
        left = self.conj()
        args = [left]
        while self.kw("or"):
            args.append(self.conj())
        return left if len(args) == 1 else BoolOp("or", args)

    def conj(self) -> Any:
        left = self.unary()
        args = [left]
        while self.kw("and"):
            args.append(self.unary())
        return left if len(args) == 1 else BoolOp("and", args)

    def unary(self) -> Any:
        if self.kw("not"):
            return BoolOp("not", [self.unary()])
        t = self.peek()
        if t.kind == "punct" and t.value == "(":
            self.i += 1
            c = self.cond()
            self.expect("punct", ")")
            return c
        return self.comparison()

    def comparison(self) -> Compare:
        t = self.expect("ident")
        if t.value.lower() in KEYWORDS:
            self.fail(t)
        path = Path(t.value.split("."), t.pos)
        nt = self.peek()
        if nt.kind == "op":
            self.i += 1
            op = "!=" if nt.value == "<>" else nt.value
            vt = self.peek()
            return Compare(path, op, self.literal(), vt)
        if self.kw("like"):
            vt = self.peek()
            return Compare(path, "like", self.literal(), vt)
        negate = self.kw("not")
        if self.kw("in"):
            self.expect("punct", "(")
            if self.peek().kind == "ident" and self.peek().value.lower() == "select":
                raise SFError(400, "MALFORMED_QUERY", "semi-join sub-selects are not supported by the sandbox")
            vals, first = [], self.peek()
            while True:
                vals.append(self.literal())
                if self.peek().value == ",":
                    self.i += 1
                    continue
                break
            self.expect("punct", ")")
            return Compare(path, "not in" if negate else "in", vals, first)
        self.fail()

    def literal(self) -> Any:
        t = self.peek()
        self.i += 1
        if t.kind == "string":
            # \\% and \\_ stay escaped for LIKE; other escapes are decoded
            return ("s", re.sub(r"\\(.)", lambda m: m.group(0) if m.group(1) in "%_" else
                                {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), t.value[1:-1]))
        if t.kind == "number":
            return ("n", Decimal(t.value))
        if t.kind == "date":
            try:
                return ("d", date.fromisoformat(t.value))
            except ValueError:
                raise SFError(400, "MALFORMED_QUERY", f"line 1:{t.pos} no viable alternative at character '{t.value}'") from None
        if t.kind == "datetime":
            if "." in t.value[19:]:
                raise SFError(400, "MALFORMED_QUERY", f"line 1:{t.pos} no viable alternative at character ' '")
            v = t.value.replace("Z", "+00:00")
            if re.search(r"[+-]\d{4}$", v):
                v = v[:-2] + ":" + v[-2:]
            return ("dt", int(datetime.fromisoformat(v).timestamp() * 1000))
        if t.kind == "ident":
            low = t.value.lower()
            if low == "null":
                return ("null", None)
            if low in ("true", "false"):
                return ("b", low == "true")
            if low in DATE_LITERALS:
                return ("dl", DATE_LITERALS[low])
        self.fail(t)


def parse(text: str) -> Query:
    return Parser(text).parse()


# --------------------------------------------------------------------------------------------------- evaluation


def invalid_column(query: Query, pos: int, name: str, obj: str) -> SFError:
    line = query.text.replace("\n", " ")
    msg = (f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\nNo such column '{name}' on entity '{obj}'. "
           "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
           "Please reference your WSDL or the describe call for the appropriate names.")
    return SFError(400, "INVALID_FIELD", msg)


@dataclass
class Resolved:
    rels: list[tuple[Field, str]]  # (reference field, target object) per hop
    field: Field
    obj: str  # object owning the final field


@dataclass(frozen=True)
class DayRange:
    start: int  # epoch ms, inclusive
    end: int  # exclusive


class Evaluator:
    """Runs a parsed :class:`Query` against a store (``store.schema``, ``store.get``, ``store.rows``).
    Date literals (``TODAY`` …) are days in the running user's time zone (``store.zone``)."""

    def __init__(self, store: Any, today: Callable[[], date]):
        self.store = store
        self.today = today
        self.zone = getattr(store, "zone", timezone.utc)

    def resolve(self, q: Query, obj: SObject, path: Path) -> Resolved:
        cur = obj
        rels = []
        for part in path.parts[:-1]:
            ref = cur.relationship(part)
            if ref is None:
                raise SFError(400, "INVALID_FIELD", invalid_column(q, path.pos, part, cur.name).errors[0]["message"].replace(
                    f"No such column '{part}'", f"Didn't understand relationship '{part}' in field path"))
            cur = self.store.schema[ref.ref]
            rels.append((ref, cur.name))
        f = cur.field(path.parts[-1])
        if f is None:
            raise invalid_column(q, path.pos, path.parts[-1], cur.name)
        return Resolved(rels, f, cur.name)

    def value(self, rec: dict | None, r: Resolved) -> Any:
        for ref, target in r.rels:
            if rec is None:
                return None
            rid = rec.get(ref.name)
            rec = self.store.get(target, rid, include_deleted=True) if rid else None
        return None if rec is None else rec.get(r.field.name)

    # -- public
    def run(self, q: Query, include_deleted: bool) -> tuple[int, list[dict]]:
        obj = self.store.schema.get(_canon(self.store.schema, q.obj))
        if obj is None:
            raise SFError(400, "INVALID_TYPE", f"\n{q.text}\n^\nERROR at Row:1:Column:1\nsObject type '{q.obj}' is not "
                          "supported. If you are attempting to use a custom object, be sure to append the '__c' after "
                          "the entity name. Please reference your WSDL or the describe call for the appropriate names.")
        rows = self.select_rows(q, obj, list(self.store.rows(obj.name, include_deleted=include_deleted)))
        if q.count:
            if q.fields:
                raise SFError(400, "MALFORMED_QUERY", "COUNT() cannot be combined with other fields")
            return len(rows), []
        return len(rows), [self.project(q, obj, r) for r in rows]

    def select_rows(self, q: Query, obj: SObject, rows: list[dict]) -> list[dict]:
        # resolve everything first (errors before work)
        projections = [f for f in q.fields if isinstance(f, Path)]
        seen = set()
        for p in projections:
            self.resolve(q, obj, p)
            key = ".".join(p.parts).lower()
            if key in seen:
                raise SFError(400, "MALFORMED_QUERY", f"duplicate field selected: {'.'.join(p.parts)}")
            seen.add(key)
        pred = self.compile(q, obj, q.where) if q.where is not None else None
        order = [(self.resolve(q, obj, p), desc, nl) for p, desc, nl in q.order]
        out = [r for r in rows if pred is None or pred(r)]
        for res, desc, nulls_last in reversed(order):
            nl = desc if nulls_last is None else nulls_last
            present = [r for r in out if self.value(r, res) is not None]
            absent = [r for r in out if self.value(r, res) is None]
            present.sort(key=lambda r, res=res: _sort_key(res.field, self.value(r, res)), reverse=desc)
            out = present + absent if nl else absent + present
        if q.offset:
            if q.offset > 2000:
                raise SFError(400, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
            out = out[q.offset:]
        if q.limit is not None:
            out = out[:q.limit]
        return out

    def project(self, q: Query, obj: SObject, rec: dict) -> dict:
        out: dict[str, Any] = {"attributes": self.store.attributes(obj.name, rec["Id"])}
        for item in q.fields:
            if isinstance(item, Query):
                out[_child_name(obj, item.obj)] = self.children(q, obj, item, rec)
                continue
            res = self.resolve(q, obj, item)
            if not res.rels:
                out[res.field.name] = self.store.wire(res.field, rec.get(res.field.name))
                continue
            target: dict[str, Any] = out
            cur: dict | None = rec
            for ref, tobj in res.rels:
                rid = cur.get(ref.name) if cur else None
                cur = self.store.get(tobj, rid, include_deleted=True) if rid else None
                name = ref.relationship_name
                if cur is None:
                    if name not in target:
                        target[name] = None
                    target = None
                    break
                if not isinstance(target.get(name), dict):
                    target[name] = {"attributes": self.store.attributes(tobj, cur["Id"])}
                target = target[name]
            if target is not None and cur is not None:
                target[res.field.name] = self.store.wire(res.field, cur.get(res.field.name))
        return out

    def children(self, q: Query, obj: SObject, sub: Query, rec: dict) -> dict | None:
        rel = _child_name(obj, sub.obj)
        if rel not in obj.children:
            raise SFError(400, "INVALID_TYPE", f"\n{q.text}\n^\nERROR at Row:1:Column:1\nDidn't understand relationship "
                          f"'{sub.obj}' in FROM part of query call. If you are attempting to use a custom relationship, "
                          "be sure to append the '__r' after the custom relationship name.")
        child_name, fk = obj.children[rel]
        child = self.store.schema[child_name]
        sub.text = q.text
        rows = [r for r in self.store.rows(child_name) if r.get(fk) == rec["Id"]]
        rows = self.select_rows(sub, child, rows)
        if not rows:
            return None
        return {"totalSize": len(rows), "done": True, "records": [self.project(sub, child, r) for r in rows]}

    def compile(self, q: Query, obj: SObject, node: Any) -> Callable[[dict], bool]:
        if isinstance(node, BoolOp):
            parts = [self.compile(q, obj, a) for a in node.args]
            if node.op == "and":
                return lambda r: all(p(r) for p in parts)
            if node.op == "or":
                return lambda r: any(p(r) for p in parts)
            return lambda r: not parts[0](r)
        res = self.resolve(q, obj, node.path)
        f = res.field
        if node.op in ("in", "not in"):
            vals = [self.coerce(q, f, v, node) for v in node.value]
            keys = {_cmp_key(f, v) for v in vals}
            if node.op == "in":
                return lambda r: (v := self.value(r, res)) is not None and _cmp_key(f, v) in keys
            return lambda r: (v := self.value(r, res)) is None or _cmp_key(f, v) not in keys
        if node.op == "like":
            if node.value[0] != "s":
                raise SFError(400, "MALFORMED_QUERY", "LIKE needs a string value")
            rx = re.compile("^" + "".join(re.escape(c) if lit else (".*" if c == "%" else ".")
                                          for lit, c in _like_tokens(node.value[1])) + "$", re.I | re.S)
            return lambda r: (v := self.value(r, res)) is not None and bool(rx.match(str(v)))
        lit = self.coerce(q, f, node.value, node)
        op = node.op
        if isinstance(lit, DayRange):  # TODAY etc. against a datetime: the whole day
            lo, hi = lit.start, lit.end
            inside = {"=": lambda v: lo <= v < hi, "!=": lambda v: not lo <= v < hi, "<": lambda v: v < lo,
                      "<=": lambda v: v < hi, ">": lambda v: v >= hi, ">=": lambda v: v >= lo}[op]
            return lambda r: (v := self.value(r, res)) is not None and inside(v)
        if lit is None:
            if op not in ("=", "!="):
                raise SFError(400, "MALFORMED_QUERY", f"null can only be used with = and !=")
            return (lambda r: self.value(r, res) is None) if op == "=" else (lambda r: self.value(r, res) is not None)
        key = _cmp_key(f, lit)

        def test(r: dict) -> bool:
            v = self.value(r, res)
            if v is None:
                return op == "!="
            a = _cmp_key(f, v)
            return {"=": a == key, "!=": a != key, "<": a < key, ">": a > key, "<=": a <= key, ">=": a >= key}[op]

        return test

    def coerce(self, q: Query, f: Field, lit: tuple[str, Any], node: Compare) -> Any:
        kind, v = lit
        pos = node.raw.pos if node.raw else node.path.pos
        if kind == "null":
            return None
        t = f.type
        if t == "datetime":
            if kind == "dt":
                return v
            if kind == "dl":  # a day in the running user's time zone: a range of instants
                d = self.today() + timedelta(days=v)
                start = int(datetime(d.year, d.month, d.day, tzinfo=self.zone).timestamp() * 1000)
                return DayRange(start, start + 86_400_000)
            if kind == "s":
                raise SFError(400, "INVALID_FIELD", f"\n{q.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\nvalue of "
                              f"filter criterion for field '{f.name}' must be of type dateTime and should not be enclosed in quotes")
        elif t == "date":
            if kind == "d":
                return v.isoformat()
            if kind == "dl":
                return (self.today() + timedelta(days=v)).isoformat()
            if kind == "s":
                raise SFError(400, "INVALID_FIELD", f"\n{q.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\nvalue of "
                              f"filter criterion for field '{f.name}' must be of type date and should not be enclosed in quotes")
        elif t == "boolean":
            if kind == "b":
                return v
        elif t in ("currency", "double", "percent", "int"):
            if kind == "n":
                return v
        elif t in ("id", "reference"):
            if kind == "s":
                nid = normalise_id(v)
                if nid is None:
                    raise SFError(400, "INVALID_QUERY_FILTER_OPERATOR", f"\n{q.text}\n{' ' * pos}^\nERROR at Row:1:Column:"
                                  f"{pos + 1}\ninvalid ID field: {v}")
                return nid
        elif kind == "s":
            return v
        raise SFError(400, "INVALID_FIELD", f"\n{q.text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\nvalue of filter "
                      f"criterion for field '{f.name}' must be of type {t} and should not be enclosed in quotes"
                      if kind != "s" else f"invalid value for field '{f.name}'")


def _like_tokens(pattern: str) -> list[tuple[bool, str]]:
    """(literal?, char): ``%`` and ``_`` are wildcards unless escaped with a backslash."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append((True, pattern[i + 1]))
            i += 2
            continue
        out.append((c not in "%_", c))
        i += 1
    return out


def _cmp_key(f: Field, v: Any) -> Any:
    if f.type in ("id", "reference"):
        return str(v)[:15]
    if isinstance(v, str) and f.type not in ("date",):
        return v.lower()
    if isinstance(v, (int, float)) and not isinstance(v, bool) and f.type in ("currency", "double", "percent", "int"):
        return Decimal(v)
    return v


def _sort_key(f: Field, v: Any) -> Any:
    return _cmp_key(f, v)


def _canon(schema: dict[str, SObject], name: str) -> str:
    for k in schema:
        if k.lower() == name.lower():
            return k
    return name


def _child_name(obj: SObject, rel: str) -> str:
    for k in obj.children:
        if k.lower() == rel.lower():
            return k
    return rel


__all__ = ["Evaluator", "Query", "parse", "tokenize", "Decimal", "InvalidOperation"]
