"""A logs handler over deterministic generated lines: filters, levels, text, cursor, histogram."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

from imbi_plugin_sdk import (
    ConnectionResult,
    CursorExpired,
    FilterOp,
    Hints,
    Histogram,
    HistogramBucket,
    InvalidInput,
    LogEntry,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    OptionField,
    OptionType,
    PluginManifest,
    PluginType,
)

from . import TEMPLATE

LEVELS = (LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR, LogLevel.DEBUG)


class ExampleLogs(LogsPlugin):
    manifest = PluginManifest(
        slug="example-logs",
        name="Example logs",
        description="Generated log lines, one per interval.",
        version="1.2.0",
        api_version="1.0",
        plugin_type=PluginType.LOGS,
        options=(
            OptionField(
                name="interval_seconds", label="Interval", type=OptionType.INTEGER, default=60
            ),
        ),
        hints=Hints(supports_histogram=True),
        service_template=TEMPLATE,
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("generator ready")

    def _all(self, query: LogQuery) -> list[LogEntry]:
        step = timedelta(seconds=int(self.context.options.get("interval_seconds", 60)))  # type: ignore[call-overload]
        if (query.end - query.start) / step > 100_000:
            raise InvalidInput(
                "the example generator serves at most 100,000 lines per search",
                fields={"start": "range too wide"},
            )
        entries = []
        moment = query.start.replace(second=0, microsecond=0)
        index = 0
        while moment <= query.end:
            if moment >= query.start:
                level = LEVELS[index % len(LEVELS)]
                entries.append(
                    LogEntry(
                        timestamp=moment,
                        level=level,
                        message=f"{self.context.project_slug} request {index} "
                        f"path=/v1/items/{index % 5}",
                        fields={
                            "index": index,
                            "path": f"/v1/items/{index % 5}",
                            "url": f"http://svc:8080/v1/items/{index % 5}",
                        },
                    )
                )
            moment += step
            index += 1
        return [e for e in entries if self._matches(e, query)]

    @staticmethod
    def _matches(entry: LogEntry, query: LogQuery) -> bool:
        if query.levels and entry.level not in query.levels:
            return False
        if query.text and query.text.lower() not in entry.message.lower():
            return False
        for flt in query.filters:
            present = flt.field in entry.fields
            actual = str(entry.fields.get(flt.field, ""))
            ok = {
                FilterOp.EQ: present and actual == flt.value,
                FilterOp.NE: actual != flt.value,
                FilterOp.CONTAINS: flt.value in actual,
                FilterOp.STARTS_WITH: actual.startswith(flt.value),
                FilterOp.REGEX: present and re.search(flt.value, actual) is not None,
                FilterOp.EXISTS: present,
            }[flt.op]
            if not ok:
                return False
        return True

    def search(self, query: LogQuery) -> LogResult:
        offset = 0
        if query.cursor:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(query.cursor))["o"])
            except (ValueError, KeyError, TypeError):
                raise CursorExpired("the cursor is not valid for this query") from None
        matched = sorted(self._all(query), key=lambda e: e.timestamp, reverse=True)
        page = matched[offset : offset + query.limit]
        more = offset + query.limit < len(matched)
        cursor = (
            base64.urlsafe_b64encode(json.dumps({"o": offset + query.limit}).encode()).decode()
            if more
            else None
        )
        return LogResult(entries=tuple(page), next_cursor=cursor)

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        span = (query.end - query.start) / bucket_count
        entries = self._all(query)
        buckets = []
        for i in range(bucket_count):
            start = query.start + span * i
            end = start + span
            count = sum(
                1
                for e in entries
                if start <= e.timestamp < end or (i == bucket_count - 1 and e.timestamp == end)
            )
            buckets.append(HistogramBucket(start=start, end=end, count=count))
        return Histogram(buckets=tuple(buckets))
