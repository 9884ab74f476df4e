"""The runner process: ``python -I -S -c BOOTSTRAP '<json spec>' <runtime roots>``
(``supervisor.BOOTSTRAP``): no site processing happened before this module runs.

Started by the host's supervisor with exec (a fresh interpreter, never a fork of a web or
Celery worker), an allowlisted environment, stdin on /dev/null, stdout and stderr on pipes
the host reads (plugin output, never the protocol), and exactly two inherited descriptors:
the protocol socket and the lifeline (a pipe whose write end only the host holds).

Two processes:

* the **warden** joins the runner's pids cgroup, creates a PID namespace and an empty
  network namespace (no interface up, no route: the runner's only way out is the host's
  egress broker over the protocol socket, ``egress``), forks the runner into them and then
  only waits: when the lifeline reads EOF (the host died) or the runner
  exits, it SIGKILLs the runner — PID 1 of the namespace, so every process the plugin
  started dies with it — and exits. It also dies with the host thread that spawned it
  (``PR_SET_PDEATHSIG``).
* the **runner** (PID 1 of its namespace) closes every other descriptor, applies the
  sandbox (``sandbox.apply``), installs the egress shim when the plugin declares hosts
  (``egress_shim``: connections by name through the host), imports the requested entry
  points, sends ``hello`` and serves calls one at a time. After each call it kills every
  other process in its namespace; if the plugin left a thread running, it asks to be
  replaced.

Only the standard library, the SDK and the plugin are imported here.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from imbi_plugin_sdk import (
    SDK_API_VERSION,
    PluginError,
    PluginFailed,
    PluginHandler,
    ProjectMetadata,
    __version__,
    check_handler_class,
)
from imbi_plugin_sdk.wire import Call, Reply, WireError, execute

from . import egress_shim, protocol, sandbox

CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# --------------------------------------------------------------------------- warden


def warden(spec: dict[str, Any]) -> int:
    _die_with_parent()
    lifeline = int(spec["lifeline"])
    if os.getppid() == 1:  # the host died before we set PDEATHSIG
        return 70
    cgroup = spec.get("cgroup") or ""
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    # Without namespaces (no root, a container's default seccomp profile) the unprivileged
    # sandbox alone is the boundary (``sandbox``); the host decided which (``capabilities``).
    if spec.get("namespaces", True) and _libc.unshare(CLONE_NEWPID | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        print(
            f"runner: cannot create PID and network namespaces: {os.strerror(err)}",
            file=sys.stderr,
        )
        return 71
    pid = os.fork()
    if pid == 0:
        os.close(lifeline)
        try:
            code = runner(spec)
        except BaseException:
            traceback.print_exc()
            code = 72
        os._exit(code)
    os.close(int(spec["fd"]))
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(lifeline, select.POLLIN | select.POLLHUP)
    poller.register(pidfd, select.POLLIN)
    while True:
        events = dict(poller.poll())
        if lifeline in events:  # EOF or anything: the host is gone or wants us gone
            os.kill(pid, signal.SIGKILL)
            if cgroup and spec.get("cgroup_version") == 2:
                # the runner's own processes, outside a PID namespace: the whole cgroup
                # (this warden included) dies at once
                with (
                    contextlib.suppress(OSError),
                    open(os.path.join(cgroup, "cgroup.kill"), "w") as kill,
                ):
                    kill.write("1")
        if pidfd in events or lifeline in events:
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


# --------------------------------------------------------------------------- runner


class HostStorage:
    """``KeyValueStore`` whose every operation is a request back to the host."""

    def __init__(self, channel: Channel, call_id: int) -> None:
        self._channel = channel
        self._call_id = call_id

    def get(self, key: str) -> str | None:
        value = self._channel.ask(self._call_id, "storage.get", key=key)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("values must be strings")
        self._channel.ask(self._call_id, "storage.set", key=key, value=value)

    def delete(self, key: str) -> None:
        self._channel.ask(self._call_id, "storage.delete", key=key)

    def keys(self, prefix: str = "") -> list[str]:
        return [str(k) for k in self._channel.ask(self._call_id, "storage.keys", prefix=prefix)]


class HostProjects:
    """``ProjectMetadataReader`` whose every read is a request back to the host, which
    scopes it to the calling binding's organization (the runner cannot name one)."""

    def __init__(self, channel: Channel, call_id: int) -> None:
        self._channel = channel
        self._call_id = call_id

    def current(self) -> ProjectMetadata | None:
        value = self._channel.ask(self._call_id, "project.current")
        return None if value is None else ProjectMetadata.from_dict(value)

    def get(self, slug: str) -> ProjectMetadata:
        return ProjectMetadata.from_dict(self._channel.ask(self._call_id, "project.get", slug=slug))


class Channel:
    """The runner's end of the protocol socket."""

    def __init__(self, sock: socket.socket, max_frame: int) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.lock:
            protocol.send_frame(self.sock, message, self.max_frame)

    def send_raw(self, body: bytes) -> None:
        if len(body) > self.max_frame:
            raise protocol.FrameTooLarge("reply over the frame cap")
        with self.lock:
            self.sock.sendall(protocol.HEADER.pack(len(body)) + body)

    def recv(self) -> dict[str, Any]:
        return protocol.recv_frame(self.sock, self.max_frame)

    def ask(self, call_id: int, op: str, **fields: Any) -> Any:
        value, fds = self.ask_fds(call_id, op, **fields)
        protocol.close_fds(fds)  # only net.connect answers carry one
        return value

    def ask_fds(self, call_id: int, op: str, **fields: Any) -> tuple[Any, list[int]]:
        """A host request's answer and the descriptors that came with it (caller owns them)."""
        with self.lock:
            protocol.send_frame(
                self.sock, {"t": "host", "id": call_id, "op": op, **fields}, self.max_frame
            )
            reply, fds = protocol.recv_frame_with_fds(self.sock, self.max_frame)
        if reply.get("t") != "host_reply" or reply.get("id") != call_id or not reply.get("ok"):
            protocol.close_fds(fds)
            if reply.get("t") != "host_reply" or reply.get("id") != call_id:
                raise protocol.ProtocolError("unexpected answer to a host request")
            raise PluginError.from_dict(reply.get("error") or {})
        return reply.get("value"), fds

    def egress(self, call_id: int) -> egress_shim.Asker:
        """The egress shim's way to the host during call ``call_id``; a refusal is
        ``PermissionError`` (``EACCES``) naming host and port."""

        def ask(host: str, port: int, family: int, timeout: float | None) -> tuple[Any, list[int]]:
            try:
                return self.ask_fds(
                    call_id, "net.connect", host=host, port=port, family=family, timeout=timeout
                )
            except PluginError as exc:
                raise PermissionError(errno.EACCES, str(exc.detail)) from None

        return ask


def _close_other_fds(keep: set[int]) -> None:
    for fd in range(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 65536 else 65536):
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _uses_legacy_sdk(module_name: str) -> bool:
    """Whether the plugin's package imported the deprecated ``plugins_core.sdk`` shim."""
    legacy = sys.modules.get("plugins_core.sdk")
    importers: set[str] = getattr(legacy, "LEGACY_IMPORTERS", set())
    package = module_name.split(".", 1)[0]
    return any(name == package or name.startswith(f"{package}.") for name in importers)


def _load(
    entries: dict[str, str], channel: Channel | None = None
) -> tuple[dict[str, type[PluginHandler]], dict[str, Any]]:
    """Import each entry point; with a ``channel`` (inspection), report each as it loads."""
    handlers: dict[str, type[PluginHandler]] = {}
    report: dict[str, Any] = {}
    for name, target in entries.items():
        module_name, _, attr = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            manifest = check_handler_class(obj)
        except BaseException as exc:
            text = str(exc).strip().splitlines()
            report[name] = {
                "ok": False,
                "reason": f"{type(exc).__name__}: {text[0] if text else ''}"[:500],
            }
        else:
            handlers[name] = obj
            report[name] = {
                "ok": True,
                "reason": "",
                "manifest": manifest.to_dict(),
                "legacy_sdk": _uses_legacy_sdk(module_name),
            }
        if channel is not None:
            channel.send({"t": "entry", "name": name, **report[name]})
    return handlers, report


def _reap_leftovers(subprocesses: bool) -> bool:
    """Kill every other process in this PID namespace (when we are its PID 1) and reap them.

    Outside a PID namespace only exited children are reaped; returns False when one is
    still alive (the runner then asks to be replaced, and the host kills its cgroup)."""
    if not subprocesses:
        return True  # seccomp refused every fork: there is nothing to reap
    if os.getpid() != 1:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            # still dying: wait for them (SIGKILL cannot be ignored)
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return True


class StderrSink:
    """The plugin's log lines go to stderr, which the host captures, caps and tags."""

    def log(self, level: int, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"{logging.getLevelName(level)} {message}\n")


def _execute(
    channel: Channel, handlers: dict[str, type[PluginHandler]], message: dict[str, Any]
) -> str:
    """The ``reply`` frame body (JSON text) for one ``call`` message."""
    call_id = message.get("id")
    try:
        call = Call.from_dict(message.get("call") or {})
        handler_cls = handlers[call.entry_point]
    except (WireError, KeyError, TypeError) as exc:
        reply = Reply.failure(
            PluginFailed(f"the runner cannot serve this call ({type(exc).__name__})")
        )
    else:
        egress_shim.bind(channel.egress(int(call_id or 0)))
        try:
            reply = execute(
                call,
                handler_cls,
                storage=HostStorage(channel, int(call_id or 0)),
                projects=HostProjects(channel, int(call_id or 0)),
                log=StderrSink(),
                max_reply_bytes=channel.max_frame - 256,
            )
        except BaseException as exc:
            reply = Reply.failure(PluginFailed(f"plugin failed ({type(exc).__name__})"))
        finally:
            egress_shim.bind(None)
    text = reply.to_json()
    return f'{{"t":"reply","id":{json.dumps(call_id)},"reply":{text}}}'


def runner(spec: dict[str, Any]) -> int:
    _die_with_parent()
    fd = int(spec["fd"])
    _close_other_fds({fd})
    sock = socket.socket(fileno=fd)
    channel = Channel(sock, int(spec.get("max_frame", protocol.DEFAULT_MAX_FRAME)))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    policy = sandbox.Policy.from_dict(spec["policy"])
    if policy.subprocesses and os.getpid() != 1:
        # outside a PID namespace orphans of the plugin's processes come back to us
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        status = sandbox.apply(policy)
    except sandbox.SandboxError as exc:
        channel.send({"t": "hello", "protocol": protocol.PROTOCOL_VERSION, "error": str(exc)})
        return 73
    if policy.network:
        egress_shim.install()
    status["egress"] = "broker" if policy.network else "none"
    _plugin_path(spec)
    for path in spec.get("sys_path") or ():  # where the plugin was found on the host
        if path not in sys.path:
            sys.path.append(str(path))
    handlers, report = _load(
        dict(spec.get("entries") or {}), channel if spec.get("inspect") else None
    )
    threads = threading.active_count()
    channel.send(
        {
            "t": "hello",
            "protocol": protocol.PROTOCOL_VERSION,
            "sdk": SDK_API_VERSION,
            "sdk_version": __version__,
            "modules": sorted({name.split(".")[0] for name in sys.modules}),
            "python": sys.version.split()[0],
            "pid_in_namespace": os.getpid(),
            "sandbox": status,
            "entries": report,
        }
    )
    while True:
        try:
            message = channel.recv()
        except protocol.ConnectionClosed:
            return 0
        kind = message.get("t")
        if kind == "ping":
            channel.send({"t": "pong", "id": message.get("id")})
        elif kind == "call":
            body = _execute(channel, handlers, message)
            reaped = _reap_leftovers(policy.subprocesses)
            if not reaped or threading.active_count() > threads:  # outlived its call
                channel.send({"t": "recycle", "id": message.get("id")})
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            channel.send_raw(body.encode())
        elif kind == "exit":
            return 0


def _plugin_path(spec: dict[str, Any]) -> None:
    """Sandboxed now: the runtime's boot roots leave ``sys.path`` and the plugin's
    site-packages join it (its declared ``.pth`` files run here, inside the sandbox)."""
    import site

    boot = {str(p) for p in spec.get("boot_path") or ()}
    sys.path[:] = [p for p in sys.path if p not in boot]
    for folder in spec.get("site_dirs") or ():
        site.addsitedir(str(folder))


def main() -> int:
    spec = json.loads(sys.argv[1])
    return warden(spec)


if __name__ == "__main__":
    sys.exit(main())
