"""Regex log filters a plugin applies locally: the shape check, stdlib only.

A plugin that filters log lines itself must match with a linear-time engine (the catalog
uses ``google-re2``; a plugin adds it to its own dependencies, the SDK stays stdlib-only)
and call ``check_regex`` first. It refuses, as ``RegexRejected`` (HTTP 400, code
``regex_rejected``), what no log search needs and what makes matching cost grow with the
pattern rather than the text:

- patterns longer than ``MAX_REGEX_LENGTH``;
- nested repetition where either repetition is unbounded (``(a+)+``, ``(.*.*){3}``,
  ``(\\w+\\s?)*``): exponential in a backtracking engine, never needed to search logs, and
  refused up front so the answer is immediate and the same whichever engine a plugin uses;
- lookaround (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), backreferences (``\\1``, ``(?P=name)``,
  ``(?(1)...)``), atomic groups and possessive repeats: no linear-time engine has them;
- anything Python's own parser refuses.

The host runs ``check_log_filters`` on every query before any plugin is called, so a plugin
only ever sees filters that passed; a plugin still calls ``check_regex`` itself when it is
tested or run outside the platform. A linear-time engine may still refuse a pattern (a
counted repetition too large for its memory budget); plugins turn that into the same error
with ``RegexRejected.unsupported``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any

from .errors import RegexRejected
from .types import FilterOp, LogFilter

__all__ = ["MAX_REGEX_LENGTH", "check_log_filters", "check_regex"]

_parser: Any = importlib.import_module("re._parser")  # the stdlib's own parser (sre_parse)

MAX_REGEX_LENGTH = 256
"""Longest regex filter accepted."""

_REPEATS = frozenset(
    name
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(_parser, name)  # POSSESSIVE_REPEAT: Python 3.11+
)
_UNBOUNDED: int = _parser.MAXREPEAT


def _children(op: Any, value: Any) -> list[Any]:
    """The sub-patterns of one parsed node."""
    name = str(op)
    if name in _REPEATS:
        return [value[2]]
    if name == "SUBPATTERN":
        return [value[3]]
    if name == "BRANCH":
        return list(value[1])
    if name in ("ASSERT", "ASSERT_NOT"):
        return [value[1]]
    if name == "GROUPREF_EXISTS":
        return [branch for branch in value[1:] if branch is not None]
    if name == "ATOMIC_GROUP":
        return [value]
    return []


def _nested(items: Any, outer: tuple[int, int] | None) -> bool:
    """Whether a repetition sits inside another one and either is unbounded."""
    for op, value in items:
        bounds = outer
        if str(op) in _REPEATS:
            low, high = int(value[0]), int(value[1])
            if high > 1:
                if outer is not None and _UNBOUNDED in (high, outer[1]):
                    return True
                bounds = (low, high)
        if any(_nested(child, bounds) for child in _children(op, value)):
            return True
    return False


_NOT_LINEAR = {
    "ASSERT": "lookaround",
    "ASSERT_NOT": "lookaround",
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional backreference",
    "GROUPREF_IGNORE": "a backreference",
    "GROUPREF_LOC_IGNORE": "a backreference",
    "GROUPREF_UNI_IGNORE": "a backreference",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}


def _not_linear(items: Any) -> str:
    """What in the parsed pattern no linear-time engine supports ('' if nothing)."""
    for op, value in items:
        found = _NOT_LINEAR.get(str(op), "")
        if found:
            return found
        for child in _children(op, value):
            found = _not_linear(child)
            if found:
                return found
    return ""


def check_regex(pattern: str, *, field: str = "filters", name: str = "") -> None:
    """Raise ``RegexRejected`` (naming ``field``, never echoing the pattern) if refused.

    ``name`` says which filter this is in the message (``filter 1, message:regex``); the
    field error stays keyed by ``field``."""
    label = f"{field} ({name})" if name else field
    if not isinstance(pattern, str) or len(pattern) > MAX_REGEX_LENGTH:
        raise RegexRejected(
            f"{label}: regular expressions are limited to {MAX_REGEX_LENGTH} characters",
            fields={field: "too long"},
        )
    try:
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        reason = exc.msg if isinstance(exc, re.error) else "too deeply nested"
        raise RegexRejected(
            f"{label}: invalid regular expression ({reason})",
            fields={field: "invalid regular expression"},
        ) from None
    if _nested(parsed, None):
        raise RegexRejected(
            f"{label}: nested repetition such as (a+)+ or (.*.*){{3}} is not supported in "
            "log filters; repeat a simple expression instead",
            fields={field: "nested repetition"},
        )
    kind = _not_linear(parsed)
    if kind:
        raise RegexRejected(
            f"{label}: {kind} is not supported in log filters (the regex engine is "
            "linear-time: no lookaround, backreferences, atomic groups or possessive repeats)",
            fields={field: "not supported by the linear-time regex engine"},
        )


def check_log_filters(filters: Iterable[LogFilter]) -> None:
    """Check every ``regex`` filter of a query (``filters[i].value``); the host runs this on
    every query before it calls any plugin, and the message names the filter refused."""
    for index, item in enumerate(filters):
        if item.op is FilterOp.REGEX:
            check_regex(
                item.value,
                field=f"filters[{index}].value",
                name=f"filter {index + 1}, {item.field}:regex",
            )
