"""The scanner's filter operations, evaluated on a screen frame (DESIGN.md §3).

Used by the synthetic source and by the fake scanner server, so both answer a filter the way
the real scanner does: filters are ANDed, a null value fails every test except ``empty`` and
``has_none_of``, and a filter on a field the screen does not have is an error naming the field
and the config that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import polars as pl

from quant_assets.errors import SourceResponseError
from quant_assets.sources.base import FilterOperation, ScanFilter, ScanQuery, scan_query_name

_COMPARISONS = ("greater", "egreater", "less", "eless", "equal", "nequal")

#: Filter operations :func:`apply_scan_filters` implements: every :data:`FilterOperation`.
SUPPORTED_OPERATIONS: frozenset[str] = frozenset(get_args(FilterOperation))


def unknown_field_error(field: str, label: str, where: str = "filters") -> SourceResponseError:
    """The error for a field the screen does not have (the scanner answers HTTP 400)."""
    return SourceResponseError(f'Unknown field "{field}" in the {where} of {scan_query_name(label)}')


def _values(flt: ScanFilter, label: str) -> list[Any]:
    if isinstance(flt.right, (list, tuple)):
        return list(flt.right)
    if flt.right is None:
        raise SourceResponseError(
            f"filter {flt.left!r} {flt.operation} of {scan_query_name(label)} needs a value or a list of values"
        )
    return [flt.right]


def _comparison(schema: pl.Schema, flt: ScanFilter, label: str) -> pl.Expr:
    column = pl.col(flt.left)
    right = flt.right
    if isinstance(right, str) and schema[flt.left].is_numeric():
        # A string on a numeric field names another field (e.g. close greater EMA50).
        if right not in schema:
            raise unknown_field_error(right, label)
        operand: Any = pl.col(right)
    elif right is None or isinstance(right, (list, tuple, dict)):
        raise SourceResponseError(
            f"filter {flt.left!r} {flt.operation} of {scan_query_name(label)} needs a single value, got {right!r}"
        )
    else:
        operand = pl.lit(right)
    return {
        "greater": column > operand,
        "egreater": column >= operand,
        "less": column < operand,
        "eless": column <= operand,
        "equal": column == operand,
        "nequal": column != operand,
    }[flt.operation]


def _in_range(schema: pl.Schema, flt: ScanFilter, label: str) -> pl.Expr:
    column = pl.col(flt.left)
    values = _values(flt, label)
    numeric_bounds = len(values) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    )
    if schema[flt.left].is_numeric():
        if not numeric_bounds:
            raise SourceResponseError(
                f"filter {flt.left!r} {flt.operation} of {scan_query_name(label)} needs [low, high], got {flt.right!r}"
            )
        return column.is_between(values[0], values[1], closed="both")
    # On a text field the scanner reads in_range as "one of" (e.g. type in [stock, fund]).
    return column.is_in(values)


def _has(schema: pl.Schema, flt: ScanFilter, label: str) -> pl.Expr:
    values = _values(flt, label)
    column = pl.col(flt.left)
    if isinstance(schema[flt.left], pl.List):
        return column.list.eval(pl.element().is_in(values)).list.any()
    return column.is_in(values)


def _filter_expression(schema: pl.Schema, flt: ScanFilter, label: str) -> pl.Expr:
    if flt.left not in schema:
        raise unknown_field_error(flt.left, label)
    column = pl.col(flt.left)
    operation = flt.operation
    if operation in _COMPARISONS:
        return _comparison(schema, flt, label)
    if operation == "in_range":
        return _in_range(schema, flt, label)
    if operation == "not_in_range":
        return ~_in_range(schema, flt, label)
    if operation in ("empty", "nempty"):
        empty = column.is_null()
        if schema[flt.left].is_float():
            empty = empty | column.is_nan()
        return empty if operation == "empty" else ~empty
    if operation in ("match", "nmatch"):
        if not isinstance(flt.right, str):
            raise SourceResponseError(
                f"filter {flt.left!r} {operation} of {scan_query_name(label)} needs a text pattern, got {flt.right!r}"
            )
        found = column.cast(pl.String).str.contains("(?i)" + flt.right)
        return found if operation == "match" else ~found
    if operation == "has":
        return _has(schema, flt, label)
    if operation == "has_none_of":
        # A missing value has none of the values.
        return (~_has(schema, flt, label)).fill_null(True)
    raise SourceResponseError(
        f"filter {flt.left!r} of {scan_query_name(label)} uses operation {operation!r}, which this source does not "
        f"support (supported: {', '.join(sorted(SUPPORTED_OPERATIONS))})"
    )


def apply_scan_filters(
    frame: pl.DataFrame, filters: Sequence[ScanFilter], *, label: str = ""
) -> pl.DataFrame:
    """Keep the rows of ``frame`` that pass every filter (ANDed, as the scanner does).

    Parameters
    ----------
    frame : polars.DataFrame
        A screen: one row per instrument, screener field names as columns.
    filters : sequence of ScanFilter
        ``{left, operation, right}`` filters; operations in :data:`SUPPORTED_OPERATIONS`.
        Comparisons take a value, or on a numeric field the name of another field;
        ``in_range`` takes ``[low, high]`` (inclusive) on a numeric field and a list of
        allowed values on a text field; ``match`` is a case-insensitive regular expression
        search; ``has``/``has_none_of`` take a value or a list and work on list or scalar
        fields.
    label : str, optional
        The config asking, named in error messages.

    Returns
    -------
    polars.DataFrame
        The passing rows, in their original order.

    Raises
    ------
    SourceResponseError
        On a field the frame does not have, an unsupported operation, a malformed value or an
        invalid pattern; the message names the field and ``label``.
    """
    if not filters:
        return frame
    expressions = [_filter_expression(frame.schema, flt, label) for flt in filters]
    try:
        return frame.filter(*expressions)
    except pl.exceptions.PolarsError as exc:
        raise SourceResponseError(f"the filters of {scan_query_name(label)} cannot be evaluated: {exc}") from exc


def answer_query(screen: pl.DataFrame, query: ScanQuery) -> pl.DataFrame:
    """What the screener answers ``query`` from a full ``screen``: its markets, its filters, its
    sort (then symbol), its first ``limit`` rows, ``symbol`` and its columns.

    Raises
    ------
    SourceResponseError
        On a field the screen does not have (filter, sort or column), naming the field and the
        query's label.
    """
    frame = screen.filter(pl.col("market").is_in(list(query.markets)))
    frame = apply_scan_filters(frame, query.filters, label=query.label)
    if query.sort_by not in frame.columns:
        raise unknown_field_error(query.sort_by, query.label, where="sort")
    missing = [c for c in query.columns if c not in frame.columns]
    if missing:
        raise unknown_field_error(missing[0], query.label, where="columns")
    frame = frame.sort([query.sort_by, "symbol"], descending=[query.descending, False], nulls_last=True)
    return frame.head(query.limit).select("symbol", *(c for c in query.columns if c != "symbol"))
