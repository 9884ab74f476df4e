"""Versions and ranges, with the standard library only: enough of PEP 440/508 for SDK ranges.

Owns ``SDK_DISTRIBUTION`` (the SDK's distribution name), ``sdk_range(requirements)`` (the
range a list of requirement strings declares for the SDK), ``parse_version`` and
``range_contains``. Versions are release numbers (``1.1.0``); pre-release and local tags
are not supported in SDK versions, so a range with them is reported as invalid. The host
uses ``packaging`` for the same check; these agree on every range made of ``==``, ``!=``,
``>=``, ``<=``, ``>``, ``<`` and ``~=`` with plain release numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "SDK_DISTRIBUTION",
    "InvalidRange",
    "canonical_name",
    "parse_version",
    "range_contains",
    "sdk_range",
]

SDK_DISTRIBUTION = "imbi-plugin-sdk"

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_CLAUSE_RE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*(?:\.\*)?)\s*$")
_VERSION_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


class InvalidRange(ValueError):
    """A version or range this module cannot read."""


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: ``Imbi_Plugin.SDK`` -> ``imbi-plugin-sdk``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.1.0"`` -> ``(1, 1, 0)``; ``InvalidRange`` for anything else."""
    if not _VERSION_RE.match(text.strip()):
        raise InvalidRange(f"{text!r} is not a release version like 1.1.0")
    return tuple(int(part) for part in text.strip().split("."))


def _padded(version: tuple[int, ...], length: int) -> tuple[int, ...]:
    return version + (0,) * (length - len(version))


def _clause_holds(op: str, bound_text: str, version: tuple[int, ...]) -> bool:
    if bound_text.endswith(".*"):
        if op not in ("==", "!="):
            raise InvalidRange(f"{op}{bound_text}: a wildcard needs == or !=")
        prefix = parse_version(bound_text[:-2])
        matches = _padded(version, len(prefix))[: len(prefix)] == prefix
        return matches if op == "==" else not matches
    bound = parse_version(bound_text)
    width = max(len(bound), len(version))
    left, right = _padded(version, width), _padded(bound, width)
    if op == "~=":
        if len(bound) < 2:
            raise InvalidRange(f"~={bound_text}: needs at least two parts")
        prefix = bound[:-1]
        return left >= right and _padded(version, len(prefix))[: len(prefix)] == prefix
    return {
        "==": left == right,
        "!=": left != right,
        ">=": left >= right,
        "<=": left <= right,
        ">": left > right,
        "<": left < right,
    }[op]


def range_contains(specifier: str, version: str) -> bool:
    """Whether ``version`` satisfies every clause of ``specifier`` (``">=1.1,<2"``)."""
    parsed = parse_version(version)
    clauses = [clause for clause in specifier.split(",") if clause.strip()]
    if not clauses:
        return True
    for clause in clauses:
        match = _CLAUSE_RE.match(clause)
        if match is None:
            raise InvalidRange(f"{clause.strip()!r} is not a version clause like >=1.1")
        if not _clause_holds(match.group(1), match.group(2), parsed):
            return False
    return True


def sdk_range(requirements: Iterable[str]) -> str | None:
    """The SDK range in ``requirements`` (``""``: the SDK without a range; ``None``: absent).

    Requirements with an environment marker (``; extra == "docs"``) are skipped.
    """
    for line in requirements:
        requirement, _, marker = line.partition(";")
        if marker.strip():
            continue
        match = _NAME_RE.match(requirement)
        if match is None or canonical_name(match.group(1)) != SDK_DISTRIBUTION:
            continue
        text = match.group(3).strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        return text.replace(" ", "")
    return None
