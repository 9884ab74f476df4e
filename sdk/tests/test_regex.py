"""sdk.regex.check_regex: the shapes a plugin refuses before matching with google-re2."""

from __future__ import annotations

import pytest
from imbi_plugin_sdk import MAX_REGEX_LENGTH, InvalidInput, PluginError, RegexRejected, check_regex


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(.*.*){3}X", "nested repetition"),
        (r"(.*.*){2}X", "nested repetition"),
        (r"(a+)+$", "nested repetition"),
        (r"(\w+\s?)*$", "nested repetition"),
        (r"((a)*){2}", "nested repetition"),
        (r"(?:x|(?:ab+)){2,}", "nested repetition"),
        (r"(unclosed", "invalid regular expression"),
        ("a" * (MAX_REGEX_LENGTH + 1), "too long"),
        (r"(?=a)b", "not supported by the linear-time regex engine"),
        (r"x(?!a)", "not supported by the linear-time regex engine"),
        (r"(?<=a)b", "not supported by the linear-time regex engine"),
        (r"(a)\1", "not supported by the linear-time regex engine"),
        (r"(?P<n>a)(?P=n)", "not supported by the linear-time regex engine"),
        (r"(a)?(?(1)b|c)", "not supported by the linear-time regex engine"),
        (r"(?>ab)c", "not supported by the linear-time regex engine"),
        (r"x(a|(?=b))", "not supported by the linear-time regex engine"),
    ],
)
def test_refused_patterns_are_regex_rejected(pattern: str, why: str) -> None:
    with pytest.raises(RegexRejected) as caught:
        check_regex(pattern, field="filters[0].value")
    error = caught.value
    assert (error.code, error.http_status) == ("regex_rejected", 400)
    assert error.fields == {"filters[0].value": why}
    assert isinstance(error, InvalidInput)  # plugins that catch InvalidInput still do


@pytest.mark.parametrize(
    "pattern",
    [
        r"error|warn",
        r"^GET /api/.*\s5\d\d$",
        r"(\d{1,3}\.){3}\d{1,3}",  # bounded inside bounded
        r"(ab)+",
        r"(?:a|b){2,5}",
        r"a{1,3}b*",
        "a" * MAX_REGEX_LENGTH,
    ],
)
def test_ordinary_log_patterns_pass(pattern: str) -> None:
    check_regex(pattern)


def test_the_error_crosses_a_process_boundary_with_its_code() -> None:
    rebuilt = PluginError.from_dict(RegexRejected.unsupported("filters").to_dict())
    assert isinstance(rebuilt, RegexRejected) and rebuilt.code == "regex_rejected"
    assert rebuilt.fields == {"filters": "not supported by the linear-time regex engine"}


def test_check_log_filters_names_the_filter_and_skips_other_operators() -> None:
    from imbi_plugin_sdk import FilterOp, LogFilter, check_log_filters

    filters = [
        LogFilter(field="msg", op=FilterOp.CONTAINS, value="(?=a)"),  # not a regex: fine
        LogFilter(field="url", op=FilterOp.REGEX, value="^/api"),
        LogFilter(field="path", op=FilterOp.REGEX, value="(?<=a)b"),
    ]
    with pytest.raises(RegexRejected) as caught:
        check_log_filters(filters)
    assert str(caught.value).startswith("filters[2].value (filter 3, path:regex): lookaround")
    assert caught.value.fields == {
        "filters[2].value": "not supported by the linear-time regex engine"
    }
    check_log_filters(filters[:2])
