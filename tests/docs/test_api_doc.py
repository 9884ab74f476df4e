"""docs/api.md's endpoint table renders as one table: every row has two cells (a ``|`` inside
a cell is escaped), no paragraph or blank line splits it, and it lists every API route."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _table() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Endpoints") :]
    lines = section.splitlines()[2:]  # the heading and the blank line after it
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_endpoint_table_is_one_table_of_two_columns() -> None:
    rows = _table()
    assert rows[0] == "| method and path | what |" and rows[1] == "|---|---|"
    for row in rows[2:]:
        cells = re.split(r"(?<!\\)\|", row)[1:-1]
        assert len(cells) == 2, f"a row with {len(cells)} cells: {row[:80]}"
    listed = "\n".join(rows)
    for path in (
        "/api/plugins`",
        "/api/plugin-index/available",
        "/api/plugin-index/install",
        "/api/plugin-distributions/{name}/approvals",
        "DELETE /api/plugin-distributions/{name}",
    ):
        assert path in listed, f"{path} is not in the endpoint table"


def test_get_api_plugins_documents_its_shape() -> None:
    row = next(r for r in _table() if r.startswith("| `GET /api/plugins` |"))
    assert "`{generation, loading, entries}`" in row
