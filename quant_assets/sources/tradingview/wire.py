"""The scanner's wire format: request and answer bodies as typed dicts, building a request
(pure; nothing is sent), and reading an answer or a rejection (DESIGN.md §3)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, NotRequired, TypedDict

import polars as pl

from quant_assets.errors import SourceResponseError
from quant_assets.sources.base import ScanFilter, ScanQuery, scan_query_name
from quant_assets.sources.screener.fields import field_dtype, fields_in
from quant_assets.sources.screener.scan_filters import unknown_field_error


class FilterExpression(TypedDict):
    """One filter ``{left, operation, right}``; ``right`` is a value, a list or a field name."""

    left: str
    operation: str
    right: Any


class FilterOperand(TypedDict, total=False):
    """One operand of a ``filter2`` node: a leaf expression or a nested node (exactly one key)."""

    expression: FilterExpression
    operation: FilterTree


class FilterTree(TypedDict):
    """The ``filter2`` boolean tree."""

    operator: Literal["and", "or"]
    operands: list[FilterOperand]


class ScanSort(TypedDict):
    """``sort``: one field, its order, and where nulls go."""

    sortBy: str
    sortOrder: Literal["asc", "desc"]
    nullsFirst: bool


class ScanOptions(TypedDict):
    """``options``: the language of descriptive fields."""

    lang: str


class ScanSymbols(TypedDict, total=False):
    """``symbols``: instrument types to ask for, or an explicit list of tickers."""

    query: dict[str, list[str]]
    tickers: list[str]


class ScanBody(TypedDict):
    """The body of ``POST /{market}/scan``; ``range`` is ``[start, end)``, end exclusive."""

    columns: list[str]
    filter: list[FilterExpression]
    filter2: NotRequired[FilterTree]
    sort: ScanSort
    range: list[int]
    options: ScanOptions
    markets: NotRequired[list[str]]
    symbols: NotRequired[ScanSymbols]


class ScanRow(TypedDict):
    """One instrument: ``s`` its symbol (``EXCHANGE:TICKER``), ``d`` values aligned with ``columns``."""

    s: str
    d: list[Any]


class ScanResponse(TypedDict):
    """A successful answer; ``totalCount`` counts every matching row, ignoring ``range``."""

    totalCount: int
    data: list[ScanRow]


class ScanErrorBody(TypedDict):
    """What the scanner answers with HTTP 400, e.g. ``Unknown field "x"``."""

    totalCount: int
    error: str
    data: None


def _wire_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_wire_value(v) for v in value]
    # YAML turns 2024-01-31 into a date; the scanner takes text.
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _wire_filter(flt: ScanFilter) -> FilterExpression:
    return {"left": flt.left, "operation": flt.operation, "right": _wire_value(flt.right)}


def request_columns(query: ScanQuery, market: str) -> list[str]:
    """The columns sent to ``market`` for ``query``: its columns that the market has (asking for
    one it lacks fails the request, :mod:`~quant_assets.sources.screener.fields`), minus
    ``symbol`` (every row has it as ``s``), plus the sort field, so pages of several markets can
    be merged in sort order."""
    columns = fields_in(market, (c for c in query.columns if c != "symbol"))
    return list(dict.fromkeys([*columns, query.sort_by]))


def build_scan_body(query: ScanQuery, market: str, start: int, end: int) -> ScanBody:
    """The request body to ``market`` for rows ``[start, end)`` of ``query`` (pure; nothing is
    sent).

    Nulls sort last, whatever the order, so the best rows come first and pages are stable.
    """
    return {
        "columns": request_columns(query, market),
        "filter": [_wire_filter(f) for f in query.filters],
        "sort": {
            "sortBy": query.sort_by,
            "sortOrder": "desc" if query.descending else "asc",
            "nullsFirst": False,
        },
        "range": [start, end],
        "options": {"lang": "en"},
    }


class BadBody(Exception):
    """A 200 body that is not a scan answer (the client retries it as a failure)."""


def snippet(raw: bytes, limit: int = 80) -> str:
    """The start of a body, whitespace squeezed, quoted for an error message."""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_scan_response(raw: bytes, n_columns: int) -> ScanResponse:
    """Validate a 200 body; raise :class:`BadBody` saying what is wrong with it."""
    if not raw.strip():
        raise BadBody("HTTP 200 with an empty body")
    try:
        # NaN and Infinity are not JSON; if a proxy lets them through they mean "no value".
        payload = json.loads(raw, parse_constant=lambda _: None)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "truncated or malformed JSON" if raw.lstrip()[:1] in (b"{", b"[") else "a non-JSON body"
        raise BadBody(f"HTTP 200 with {kind} ({exc}): {snippet(raw)}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise BadBody(f"HTTP 200 with JSON lacking a 'data' list: {snippet(raw)}")
    total = payload.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise BadBody(f"HTTP 200 with JSON lacking a non-negative 'totalCount': {snippet(raw)}")
    for row in payload["data"]:
        if not (
            isinstance(row, dict)
            and isinstance(row.get("s"), str)
            and isinstance(row.get("d"), list)
            and len(row["d"]) == n_columns
        ):
            raise BadBody(
                f"HTTP 200 with a row that is not {{s, d[{n_columns}]}}: {snippet(json.dumps(row).encode())}"
            )
    return {"totalCount": total, "data": payload["data"]}


def _field_location(body: ScanBody, name: str) -> str:
    if body["sort"]["sortBy"] == name:
        return "sort"
    if any(name in (f["left"], f["right"]) for f in body["filter"]):
        return "filters"
    return "columns"


def rejection_error(status: int, raw: bytes, body: ScanBody, label: str, path: str) -> SourceResponseError:
    """The error for an answer that retrying cannot fix (400, 404, ...)."""
    where = f"(HTTP {status} from POST {path})"
    try:
        message = json.loads(raw).get("error")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        message = None
    if not isinstance(message, str):
        return SourceResponseError(
            f"{scan_query_name(label)}: the scanner refused the request {where}: {snippet(raw)}"
        )
    unknown = re.search(r'Unknown field "([^"]*)"', message)
    if unknown:
        error = unknown_field_error(unknown.group(1), label, where=_field_location(body, unknown.group(1)))
        return SourceResponseError(f"{error} {where}")
    return SourceResponseError(f"{scan_query_name(label)}: the scanner refused the request {where}: {message}")


def page_frame(response: ScanResponse, columns: Sequence[str]) -> pl.DataFrame:
    """One answer's rows as a frame: ``symbol``, then ``columns`` in request order, each of its
    field's type (:func:`~quant_assets.sources.screener.fields.field_dtype`), so an answer with
    no rows, or only nulls in a column, has the same schema as any other.

    Raises
    ------
    BadBody
        A value does not fit its field's type.
    """
    rows = response["data"]
    data = [pl.Series("symbol", [row["s"] for row in rows], dtype=pl.String)]
    for j, name in enumerate(columns):
        # strict=False: JSON numbers come as ints and floats mixed; nulls stay nulls.
        values = pl.Series(name, [row["d"][j] for row in rows], strict=False)
        # A field we hold no type for is read as answered; with no value at all, as a number.
        dtype = field_dtype(name) or (pl.Float64 if values.dtype == pl.Null else values.dtype)
        try:
            data.append(values.cast(dtype))
        except pl.exceptions.PolarsError as exc:
            raise BadBody(f"HTTP 200 with values of {name!r} that are not {dtype}: {values.head(3).to_list()}") from exc
    return pl.DataFrame(data)
