"""Imports off the request path in real processes: gunicorn workers and Celery pool children.

One simulated node (production settings, a gunicorn with two workers, a Celery worker with
two prefork children) on the test venv, which holds tests/hostile_plugin: its
'hostile-import-hang' entry point sleeps 30 s at import. The import deadline is 60 s here, so
a process that waited for the registry would not answer for 30 s, and then would list the
entry point ``loaded``. Every process answers at once instead, with it ``loading``, the
trusted catalog loaded, and its own thread importing it: the Celery children were forked
from a main process that had started its inspection, and threads do not survive a fork.
"""

from __future__ import annotations

import os
from pathlib import Path

from imbi.testing.nodes import children_report, each_worker, wait
from imbi.testing.nodes import platform as start_platform


def test_every_web_worker_and_celery_child_serves_while_a_hanging_plugin_loads(
    tmp_path: Path,
) -> None:
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/12"
    with start_platform(
        tmp_path,
        os.environ["DATABASE_URL"],
        redis_url,
        nodes=("node-a",),
        env={
            "IMBI_PLUGIN_IMPORT_TIMEOUT": "60",
            # trust by name here (this test is about loading, not the trust lock): production
            # settings otherwise read <repo>/trusted-plugins.lock, which another test may write
            "IMBI_TRUSTED_PLUGIN_LOCK": "",
            # the test-only hostile distribution is not installed from a signed index
            "IMBI_PLUGINS_UNSIGNED_ALLOWED": "imbi-plugin-hostile,imbi-plugin-aws,"
            "imbi-plugin-github,imbi-plugin-local,imbi-plugin-logzio,imbi-plugin-oidc",
        },
    ) as running:
        node = running.nodes["node-a"]
        answers = wait(lambda: each_worker(node, "/api/plugins"), 60, "both web workers", running)
        for worker, response in answers.items():
            assert response.status_code == 200, response.text
            body = response.json()
            status = {e["name"]: e["status"] for e in body["entries"]}
            assert status["hostile-import-hang"] == "loading", worker
            assert status["local-config"] == "loaded", worker  # trusted: imported at once
            assert body["loading"] == sum(1 for s in status.values() if s == "loading")

        reports = children_report(running, node)
        assert len({r["pid"] for r in reports}) == 2  # both pool children answered
        for report in reports:
            assert "hostile-import-hang" in report["loading"], report
            assert "local-config" in report["entries"], report
            assert report["inspecting_here"] is True, report  # not a dead parent's thread
