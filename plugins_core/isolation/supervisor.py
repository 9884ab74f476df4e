"""Runner processes on the host side: spawn, handshake, calls, deadlines, crashes, pools.

``RunnerProcess.spawn(spec)`` execs a fresh interpreter (``python -I -S -c BOOTSTRAP``: no
``.pth``, ``sitecustomize`` or ``usercustomize`` is processed, no site-packages is on the path
and no plugin environment's ``pyvenv.cfg`` is read; the bootstrap puts only the runtime's own
two import roots after the standard library and runs ``plugins_core.isolation.child``, which
adds the plugin's site-packages after the sandbox is applied) from a dedicated spawner
thread (so ``PR_SET_PDEATHSIG`` in the child is tied to a thread that lives as long as the
host), with an allowlisted environment, a private temp folder, a pids cgroup, a socketpair
for the protocol, a lifeline pipe and two output pipes. It waits for ``hello`` within the
import deadline.

``RunnerProcess.call`` sends one call and serves the runner's requests back to the host
until the reply arrives or the wall-clock deadline passes. Outcomes:

* deadline passed → the runner is killed (with everything in its PID namespace) →
  ``PluginTimeout`` (504 ``plugin_timeout``); the deadline bounds the whole exchange, every
  frame however slowly its bytes arrive (``protocol.recv_frame``'s ``deadline``), and the
  handshake the same way;
* the socket closes (exit, signal, rlimit) → ``PluginCrashed`` (502 ``plugin_crashed``), at
  once, with the exit code or signal name;
* a malformed, non-JSON or oversized frame → the runner is killed → ``PluginFailed``.

``Pool`` keeps warm runners per key (distribution, version, organization), retires one
whose threads, memory or temp folder grew during a call or that used CPU while idle
(``footprint``), replaces dead ones, and delays restarts after consecutive crashes with
exponential backoff. Plugin stdout and stderr are read by a thread per stream, capped per
line and in total, rate-limited, redacted of the call's credential values and logged as
``imbi.plugins.output`` tagged with the plugin slug.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import IO, Any

from imbi_plugin_sdk import PluginError

from . import capabilities, cgroups, footprint, protocol
from .errors import PluginCannotRunHere, PluginCrashed, PluginFailed, PluginTimeout
from .sandbox import Policy

logger = logging.getLogger("imbi.plugins.isolation")
output_logger = logging.getLogger("imbi.plugins.output")

ENV_ALLOWLIST = ("LANG", "LC_ALL", "TZ")
HostHandler = Callable[[dict[str, Any]], Any]


def runner_tmp_base() -> str:
    """The one folder every runner's private temp folder lives in (mode 0700, made when a
    runner starts): a directory grant (``paths``) may never be it, inside it or contain
    it, so no runner is granted another's temp folder."""
    return os.path.join(tempfile.gettempdir(), "imbi-runners")


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner loads and may do. ``key`` picks its pool."""

    key: tuple[str, ...]
    slug: str
    entries: dict[str, str]  # entry-point name -> "module:attr"
    policy: Policy
    max_frame: int = protocol.DEFAULT_MAX_FRAME
    start_timeout: float = 10.0
    inspect: bool = False  # report each entry point as it is imported (registry builds)
    sys_path: tuple[str, ...] = ()  # import roots the runner's own sys.path lacks
    tmp_bytes: int = 0  # the temp folder's total on disk; past it the runner is killed
    python: str = field(default_factory=lambda: sys.executable)
    # site-packages folders the runner adds (``site.addsitedir``) once sandboxed
    site_dirs: tuple[str, ...] = ()
    env: str = ""  # the runtime-installed distribution's environment, if any


_env_preflight: Callable[[str], None] | None = None


def set_env_preflight(check: Callable[[str], None] | None) -> None:
    """``check(env)`` runs before every start of a runner from a distribution's environment
    (not the install's own import check): its file manifest at the moment of use. It raises
    ``PluginFailed`` to refuse the start. Registered by the layer that knows the manifests
    (``distributions.integrity``)."""
    global _env_preflight
    _env_preflight = check


def boot_path() -> tuple[str, ...]:
    """The import roots of the runtime itself (this package and the SDK), nothing else."""
    import imbi_plugin_sdk

    import plugins_core

    return tuple(
        dict.fromkeys(
            os.path.dirname(os.path.dirname(os.path.realpath(module.__file__ or "")))
            for module in (plugins_core, imbi_plugin_sdk)
        )
    )


# ``-c``: argv[1] is the spec, argv[2:] the runtime's import roots (appended after the
# standard library, so nothing there can shadow a standard module).
BOOTSTRAP = (
    "import sys; sys.path.extend(sys.argv[2:]); del sys.argv[2:]; "
    "from plugins_core.isolation.child import main; raise SystemExit(main())"
)


# --------------------------------------------------------------------------- spawning


class _Spawner:
    """One long-lived thread that starts every runner (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = 0

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="imbi-runner-spawner", daemon=True
                )
                self._thread.start()
        future: Future[Any] = Future()
        self._queue.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_spawner = _Spawner()


class _OutputForwarder:
    """Reads one plugin output stream; logs it capped, rate-limited and redacted."""

    LINE_MAX = 1000  # characters per line logged
    TOTAL_MAX = 256 * 1024  # characters logged per call
    RATE = 50.0  # lines per second, with a burst of BURST
    BURST = 100.0

    def __init__(self, runner: RunnerProcess, stream: IO[bytes], name: str) -> None:
        self.runner, self.stream, self.name = runner, stream, name
        self.logged = 0
        self.call = 0
        self.dropped = 0
        self.tokens = self.BURST
        self.last = time.monotonic()
        threading.Thread(target=self._loop, name=f"imbi-runner-{name}", daemon=True).start()

    def _loop(self) -> None:
        try:
            while True:
                line = self.stream.readline(64 * 1024)
                if not line:
                    break
                self._emit(line.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.stream.close()
            if self.dropped:
                output_logger.warning(
                    "plugin %s %s: %d lines suppressed (cap or rate limit)",
                    self.runner.spec.slug,
                    self.name,
                    self.dropped,
                )

    def _emit(self, text: str) -> None:
        if self.runner.calls != self.call:  # the cap is per call
            self.call, self.logged = self.runner.calls, 0
        now = time.monotonic()
        self.tokens = min(self.BURST, self.tokens + (now - self.last) * self.RATE)
        self.last = now
        if self.tokens < 1 or self.logged >= self.TOTAL_MAX:
            self.dropped += 1
            return
        self.tokens -= 1
        text = self.runner.redact(text[: self.LINE_MAX])
        self.logged += len(text)
        output_logger.warning("plugin %s %s: %s", self.runner.spec.slug, self.name, text)


def _signal_name(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0 or code > 128:
        number = -code if code < 0 else code - 128
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exited with code {code}"


class RunnerProcess:
    """One runner: a warden process and the sandboxed runner in its PID namespace."""

    _ids = itertools.count(1)

    def __init__(self, spec: RunnerSpec) -> None:
        caps = capabilities.probe()
        reason = caps.refusal(network=spec.policy.network, subprocesses=spec.policy.subprocesses)
        if reason:  # never a runner that cannot be sandboxed here
            raise PluginCannotRunHere(f"plugin '{spec.slug}' cannot run here: {reason}")
        capabilities.harden_host()  # same-uid runners cannot ptrace or read this process
        self.spec = spec
        self.hello: dict[str, Any] = {}
        self.secrets: list[str] = []
        self.calls = 0
        self.dead = False
        self.recycle = False
        self.over_quota = 0  # the temp folder limit it was killed for (``footprint``)
        self.busy = True  # in a call or not yet pooled (idle runners must not use CPU)
        self.started = self._deadline = time.monotonic()
        os.makedirs(runner_tmp_base(), mode=0o700, exist_ok=True)
        self.tmp_dir = tempfile.mkdtemp(prefix=f"runner-{os.getpid()}-", dir=runner_tmp_base())
        os.chmod(self.tmp_dir, 0o700)
        self._cgroup = cgroups.make(
            caps, processes=spec.policy.processes, memory=spec.policy.address_space
        )
        self.cgroup = self._cgroup.path if self._cgroup else ""
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        lifeline_r, self._lifeline_w = os.pipe()
        policy = Policy(
            **{**spec.policy.__dict__, "tmp_dir": self.tmp_dir, "netns": caps.namespaces}
        )
        child_spec = {
            "fd": child_sock.fileno(),
            "lifeline": lifeline_r,
            "cgroup": self.cgroup,
            "cgroup_version": self._cgroup.version if self._cgroup else 0,
            "namespaces": caps.namespaces,
            "entries": spec.entries,
            "policy": policy.to_dict(),
            "max_frame": spec.max_frame,
            "inspect": spec.inspect,
            "sys_path": list(spec.sys_path),
            "site_dirs": list(spec.site_dirs),
            "boot_path": list(boot_path()),
        }
        # The runner's whole environment: the allowlist, nothing of the host's configuration.
        child_env = {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ}
        child_env.update({"PATH": "/usr/bin:/bin", "HOME": self.tmp_dir, "TMPDIR": self.tmp_dir})
        child_env.setdefault("LANG", "C.UTF-8")
        child_env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            self.proc = subprocess.Popen(
                [
                    spec.python,
                    "-I",
                    "-S",
                    "-c",
                    BOOTSTRAP,
                    json.dumps(child_spec),
                    *boot_path(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(child_sock.fileno(), lifeline_r),
                close_fds=True,
                env=child_env,
                cwd=self.tmp_dir,
                start_new_session=True,
            )
        finally:
            child_sock.close()
            os.close(lifeline_r)
        self.sock = host_sock
        assert self.proc.stdout is not None and self.proc.stderr is not None
        _OutputForwarder(self, self.proc.stdout, "stdout")
        _OutputForwarder(self, self.proc.stderr, "stderr")
        footprint.watchdog.track(self)

    @classmethod
    def start(cls, spec: RunnerSpec) -> RunnerProcess:
        """Start a runner without waiting for its handshake (after ``spec.preflight``)."""
        check = _env_preflight
        if check is not None and spec.env and not spec.inspect:
            check(spec.env)
        runner: RunnerProcess = _spawner.run(lambda: cls(spec))
        return runner

    @classmethod
    def spawn(cls, spec: RunnerSpec) -> RunnerProcess:
        """Start a runner and wait for its handshake (``PluginFailed`` if it never comes)."""
        runner = cls.start(spec)
        runner._handshake()
        return runner

    def recv(self, timeout: float) -> dict[str, Any]:
        """One whole frame from the runner within ``timeout`` seconds (``TimeoutError``,
        ``protocol.ProtocolError``)."""
        return protocol.recv_frame(self.sock, self.spec.max_frame, time.monotonic() + timeout)

    def _handshake(self) -> None:
        deadline = self.started + self.spec.start_timeout  # bounds the whole handshake
        try:
            hello = protocol.recv_frame(self.sock, self.spec.max_frame, deadline)
        except TimeoutError:
            self.kill()
            raise PluginTimeout(
                f"plugin '{self.spec.slug}' did not finish importing within "
                f"{self.spec.start_timeout:g}s"
            ) from None
        except protocol.ConnectionClosed:
            code = self.kill()
            raise PluginCrashed(
                f"plugin '{self.spec.slug}' runner {self._why(code)} while starting"
            ) from None
        except protocol.ProtocolError as exc:
            self.kill()
            raise PluginFailed(
                f"plugin '{self.spec.slug}' runner sent a bad handshake ({exc})"
            ) from None
        if hello.get("t") != "hello" or hello.get("protocol") != protocol.PROTOCOL_VERSION:
            self.kill()
            raise PluginFailed(f"plugin '{self.spec.slug}' runner speaks another protocol")
        if hello.get("error"):
            self.kill()
            raise PluginFailed(
                f"plugin '{self.spec.slug}' runner could not start: {hello['error']}"
            )
        self.hello = hello
        footprint.baseline(self)

    @property
    def entries(self) -> dict[str, Any]:
        entries = self.hello.get("entries")
        return entries if isinstance(entries, dict) else {}

    def redact(self, text: str) -> str:
        for value in sorted((s for s in self.secrets if len(s) >= 4), key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            deadline = time.monotonic() + timeout
            self.sock.settimeout(timeout)
            protocol.send_frame(self.sock, {"t": "ping", "id": 0}, self.spec.max_frame)
            return protocol.recv_frame(self.sock, self.spec.max_frame, deadline).get("t") == "pong"
        except (OSError, protocol.ProtocolError):
            self.kill()
            return False

    def call(
        self,
        message: dict[str, Any],
        *,
        timeout: float,
        on_host: HostHandler | None = None,
        secrets: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Send ``message`` (a ``call``) and return its ``reply``; see the module docstring."""
        slug = self.spec.slug
        self.secrets = [s for s in secrets if s]
        self.calls += 1
        deadline = self._deadline = time.monotonic() + timeout
        try:
            self.sock.settimeout(timeout)
            protocol.send_frame(self.sock, {**message, "t": "call"}, self.spec.max_frame)
            while True:
                # the deadline bounds the whole exchange: every frame, however it trickles
                reply = protocol.recv_frame(self.sock, self.spec.max_frame, deadline)
                if reply.get("id") != message["id"]:
                    raise protocol.ProtocolError("a frame for another call")
                if reply["t"] == "reply":
                    return reply
                if reply["t"] == "recycle":  # a plugin thread outlived the call
                    self.recycle = True
                    continue
                if reply["t"] != "host" or on_host is None:
                    raise protocol.ProtocolError(f"unexpected {reply['t']!r} frame")
                self._answer_host(reply, on_host)
        except TimeoutError:
            self.kill()
            raise PluginTimeout(f"plugin '{slug}' did not answer within {timeout:g}s") from None
        except protocol.ConnectionClosed:
            code = self.kill()
            raise PluginCrashed(f"plugin '{slug}' crashed ({self._why(code)})") from None
        except BrokenPipeError:
            code = self.kill()
            raise PluginCrashed(f"plugin '{slug}' crashed ({self._why(code)})") from None
        except protocol.ProtocolError as exc:
            self.kill()
            raise PluginFailed(f"plugin '{slug}' broke the protocol: {exc}") from None
        finally:
            self.secrets = []

    def _why(self, code: int | None) -> str:
        if self.over_quota:
            return f"its temp folder grew past {self.over_quota // 1024**2} MiB"
        return _signal_name(code)

    def _answer_host(self, request: dict[str, Any], on_host: HostHandler) -> None:
        """Answer one host request; a ``protocol.Descriptor`` answer hands its descriptor
        to the runner with the reply, and the host's copy is closed whatever happens."""
        fd = -1
        try:
            value = on_host(request)
            if isinstance(value, protocol.Descriptor):
                fd, value = value.fd, value.value
            answer: dict[str, Any] = {
                "t": "host_reply",
                "id": request["id"],
                "ok": True,
                "value": value,
            }
        except PluginError as exc:
            answer = {"t": "host_reply", "id": request["id"], "ok": False, "error": exc.to_dict()}
        except Exception as exc:
            # a host bug a runner's request reached: the call fails (502, not a 500), and
            # the runner, still waiting for this answer, never serves another call
            op = str(request.get("op"))[:40]
            logger.error(
                "plugin %s: answering its %r host request failed (%s)",
                self.spec.slug,
                op,
                type(exc).__name__,
            )
            self.kill()
            raise PluginFailed(
                f"plugin '{self.spec.slug}': the host could not answer its {op!r} request"
            ) from None
        try:
            self.sock.settimeout(max(0.001, self._deadline - time.monotonic()))
            if fd >= 0:
                protocol.send_frame_with_fd(self.sock, answer, fd, self.spec.max_frame)
            else:
                protocol.send_frame(self.sock, answer, self.spec.max_frame)
        finally:
            if fd >= 0:
                os.close(fd)

    def kill(self) -> int | None:
        """Kill the warden and the runner's whole PID namespace; returns the exit code."""
        if not self.dead:
            self.dead = True
            with contextlib.suppress(OSError):
                os.close(self._lifeline_w)  # the warden SIGKILLs the runner (PID 1 of its ns)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.sock.close()
            if self._cgroup is not None:
                self._cgroup.kill()
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        return self.proc.returncode

    def close(self) -> None:
        self.kill()


# --------------------------------------------------------------------------- pools


class Pool:
    """Warm runners per key; at most ``max_idle`` idle per key, ``max_total`` in all."""

    def __init__(
        self, *, max_idle: int = 2, max_total: int = 32, max_rss: int = 0, max_tmp: int = 0
    ) -> None:
        self.max_idle = max_idle
        self.max_total = max_total
        self.max_rss = max_rss  # a runner above this after a call is retired (0: no limit)
        self.max_tmp = max_tmp  # the same for its temp folder
        self._idle: dict[tuple[str, ...], list[RunnerProcess]] = {}
        self._crashes: dict[tuple[str, ...], tuple[int, float]] = {}
        self._live: set[tuple[str, str]] | None = None  # None: every version is live
        self._lock = threading.Lock()

    def retire(self, live: set[tuple[str, str]]) -> int:
        """Stop serving pools whose (distribution, version) is not in ``live``: kill their
        idle runners now; a runner still in a call is killed when it is released."""
        with self._lock:
            self._live = set(live)
            gone = [k for k in self._idle if self._is_retired(k)]
            doomed = [r for k in gone for r in self._idle.pop(k, [])]
        for runner in doomed:
            runner.kill()
        return len(doomed)

    def _is_retired(self, key: tuple[str, ...]) -> bool:
        if self._live is None or len(key) < 4 or key[0] == "inspect":
            return False
        return (key[0], key[1]) not in self._live

    def backoff(self, key: tuple[str, ...]) -> float:
        """Seconds a new runner for ``key`` must still wait after consecutive crashes."""
        count, last = self._crashes.get(key, (0, 0.0))
        if not count:
            return 0.0
        delay = min(30.0, 0.05 * 2.0 ** (count - 1))
        return max(0.0, last + delay - time.monotonic())

    def acquire(self, spec: RunnerSpec, *, wait_limit: float) -> RunnerProcess:
        with self._lock:
            idle = self._idle.get(spec.key, [])
            while idle:
                runner = idle.pop()
                if runner.alive() and not footprint.spun_while_idle(runner):
                    runner.busy = True
                    return runner
                runner.kill()
        delay = self.backoff(spec.key)
        if delay > 0:
            if delay > wait_limit:
                raise PluginCrashed(
                    f"plugin '{spec.slug}' keeps crashing; next restart in {delay:.1f}s"
                )
            time.sleep(delay)
        runner = RunnerProcess.spawn(spec)
        runner.busy = True
        return runner

    def release(self, runner: RunnerProcess, *, crashed: bool = False) -> None:
        key = runner.spec.key
        with self._lock:
            if crashed:
                count, _ = self._crashes.get(key, (0, 0.0))
                self._crashes[key] = (count + 1, time.monotonic())
            elif runner.alive():
                self._crashes.pop(key, None)
        if not runner.alive() or runner.recycle or self._is_retired(key):
            runner.kill()
            return
        reason = footprint.retire_reason(runner, max_rss=self.max_rss, max_tmp=self.max_tmp)
        if reason:
            logger.info("plugin %s: runner retired after its call: %s", runner.spec.slug, reason)
            runner.kill()
            return
        runner.busy = False  # idle from here: the watchdog kills it if it uses CPU
        with self._lock:
            idle = self._idle.setdefault(key, [])
            total = sum(len(v) for v in self._idle.values())
            if len(idle) < self.max_idle and total < self.max_total:
                idle.append(runner)
                return
        runner.kill()

    def runners(self) -> list[RunnerProcess]:
        with self._lock:
            return [r for idle in self._idle.values() for r in idle]

    def close(self) -> None:
        with self._lock:
            every = [r for idle in self._idle.values() for r in idle]
            self._idle.clear()
            self._crashes.clear()
        for runner in every:
            runner.kill()
