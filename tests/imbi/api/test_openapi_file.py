"""docs/openapi.yaml is the generated schema, committed for readers: it must not drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_committed_schema_matches_the_code(tmp_path: Path) -> None:
    out = tmp_path / "openapi.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "imbi.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    committed = (ROOT / "docs" / "openapi.yaml").read_text()
    assert out.read_text() == committed, (
        "docs/openapi.yaml is stale: run `python manage.py spectacular --file docs/openapi.yaml`"
    )


def test_every_status_the_api_answers_is_documented() -> None:
    """422 (supply-chain refusals of index installs), 413 (body too large) and 429 (token
    lockout) are answered by the API, so the schema lists them like the others."""
    import yaml

    schema = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    install = schema["paths"]["/api/plugin-index/install"]["post"]["responses"]
    assert {"201", "400", "403", "404", "409", "413", "422", "429", "502", "503"} <= set(install)
