"""Fault 6 of issue 21: a task whose worker process is killed is run again.

A real Celery worker (production settings, prefork with one child, the suite's Redis as
broker) runs ``registry_report(pause=4)``; its pool child is killed with SIGKILL mid-task.
Late acknowledgement and ``retry_on_worker_lost`` send the task again, a new child runs it,
and the caller gets its result. Before, the message was acknowledged on receipt and the
caller waited forever (``WorkerLostError`` stored, never retried).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from celery import Celery

from .conftest import BIN, production_env


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def test_a_task_whose_worker_is_killed_runs_again(transactional_db: Any, tmp_path: Path) -> None:
    queue = f"faults-{secrets.token_hex(4)}"
    env = production_env(tmp_path, IMBI_NODE_ID=queue)
    log = tmp_path / "worker.log"
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "imbi.celery",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = Celery("probe", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
    try:
        warm = client.send_task("plugins_core.tasks.registry_report", queue=queue)
        first_child = warm.get(timeout=90)["pid"]
        assert first_child in children(worker.pid)  # (the worker may also run plugin runners)
        slow = client.send_task(
            "plugins_core.tasks.registry_report", kwargs={"pause": 4}, queue=queue
        )
        deadline = time.monotonic() + 20
        while f"{slow.id}] received" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(1.0)  # well inside the 4 s pause
        os.kill(first_child, signal.SIGKILL)
        try:
            report = slow.get(timeout=60)
        except Exception as exc:
            raise AssertionError(f"{exc!r}\n{log.read_text()[-4000:]}") from None
        text = log.read_text()
        assert report["pid"] != first_child, text[-3000:]
        assert "WorkerLostError" in text
        assert "retry: Retry in 5s" in text, text[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
