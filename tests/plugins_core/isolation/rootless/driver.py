"""The "web process" of the rootless suite, run by ``test_rootless.py`` as an unprivileged
uid with every capability dropped and ``no_new_privs``, on a throwaway interpreter.

It probes the host, starts runners of ``imbi_rootless_hostile`` through the supervisor
(what the platform's web and worker processes do), runs each attack as a call, checks
after each that a healthy runner still answers, and prints one JSON report. Control
measurements run the same attempts in an unsandboxed process of the same uid, so the
report shows the sandbox (not the host's permissions) refused them.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from typing import Any

from imbi_plugin_sdk import PluginContext, PluginError
from imbi_plugin_sdk.wire import Call

from plugins_core.isolation import capabilities
from plugins_core.isolation.policy import SYSTEM_READ
from plugins_core.isolation.sandbox import Policy
from plugins_core.isolation.supervisor import RunnerProcess, RunnerSpec

ENTRIES = {"h": "imbi_rootless_hostile:Hostile", "n": "imbi_rootless_hostile:Networked"}


def spec(entry: str, *, network: bool = False) -> RunnerSpec:
    venv = sys.prefix
    policy = Policy(
        read_paths=(*SYSTEM_READ, venv, os.path.realpath(sys.executable)),
        network=network,
        address_space=1024**3,
        cpu_seconds=20,
    )
    return RunnerSpec(
        key=(entry,), slug=f"rootless-{entry}", entries={entry: ENTRIES[entry]}, policy=policy
    )


def call(runner: RunnerProcess, entry: str, attack: str, target: dict[str, Any]) -> dict[str, Any]:
    context = PluginContext(organization="acme", options={"attack": attack, "target": target})
    wire = Call.build(entry, "list_keys", context=context, credentials={"token": "cred-7781"})
    started = time.monotonic()
    try:
        answer = runner.call({"id": 1, "call": wire.to_dict()}, timeout=5.0, secrets=["cred-7781"])
    except PluginError as exc:
        return {"error": exc.code, "seconds": round(time.monotonic() - started, 2)}
    reply = answer["reply"]
    if reply.get("error") is not None:
        error = reply["error"]
        return {"error": error.get("code"), "detail": str(error.get("detail"))[:200]}
    return {"keys": [k["key"] for k in reply["result"]]}


def healthy() -> bool:
    runner = RunnerProcess.spawn(spec("h"))
    try:
        return call(runner, "h", "healthy", {}).get("keys") == ["HEALTHY"]
    finally:
        runner.kill()


def children() -> list[int]:
    found: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            found += [int(pid) for pid in handle.read().split()]
    return found


CONTROL = """
import json, os, socket, sys
target = json.loads(sys.argv[1])
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ALLOWED"
    except OSError as exc:
        out[name] = type(exc).__name__
def tcp(address):
    with socket.create_connection(tuple(address), timeout=2):
        pass
def unix(path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
attempt("POSTGRES_TCP", lambda: tcp(target["pg"]))
attempt("REDIS_TCP", lambda: tcp(target["redis"]))
attempt("UNIX", lambda: unix(target["unix"]))
attempt("READ_HOST_SECRET", lambda: open(target["secret_file"]).read())
attempt("ENVIRON", lambda: open(f"/proc/{target['web_pid']}/environ", "rb").read())
attempt("WRITE_TMP", lambda: open(os.path.join(target["home"], "control.txt"), "w").close())
print(json.dumps(out))
"""


def main() -> int:
    target = json.loads(sys.argv[1])
    target["web_pid"] = os.getpid()
    caps = capabilities.probe()
    report: dict[str, Any] = {"uid": os.geteuid(), "capabilities": caps.layers()}
    with open("/proc/self/status") as status:
        report["proc_status"] = {
            line.split(":")[0]: line.split(":", 1)[1].strip()
            for line in status
            if line.startswith(("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"))
        }
    report["attacks"] = {}
    for entry, attack, network in (
        ("h", "fork_bomb", False),
        ("h", "thread_bomb", False),
        ("h", "memory", False),
        ("h", "web_process", False),
        ("h", "sockets", False),
        ("n", "sockets", True),
        ("h", "files", False),
    ):
        runner = RunnerProcess.spawn(spec(entry, network=network))
        report["sandbox"] = runner.hello.get("sandbox")
        result = call(runner, entry, attack, target)
        result["recycle"] = runner.recycle
        runner.kill()
        result["left_behind"] = children()
        result["healthy_after"] = healthy()
        report["attacks"][f"{attack}{'_networked' if network else ''}"] = result
    report["dumpable"] = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    control = subprocess.run(
        [sys.executable, "-I", "-c", CONTROL, json.dumps(target)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    report["control"] = json.loads(control.stdout or "{}") or control.stderr[-500:]
    report["alive"] = True
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
