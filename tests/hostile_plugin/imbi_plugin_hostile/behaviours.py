"""One configuration handler per attack; ``list_keys`` is the attack, its result the report.

A report is a list of ``ConfigKey`` whose key names say what the attack achieved, e.g.
``READ_DENIED`` or ``LEAK_<text>``; the tests grep responses and logs for secrets.
"""

from __future__ import annotations

import ctypes
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    OptionField,
    OptionType,
    Permissions,
    PluginManifest,
    PluginType,
)

DECLARED_PORT = 47651  # the only port hostile-network declares


def _manifest(slug: str, api_version: str = "1.0", **fields: Any) -> PluginManifest:
    return PluginManifest(
        slug=slug,
        name=slug,
        description="A hostile plugin for the isolation tests.",
        version="0.1.0",
        api_version=api_version,
        plugin_type=PluginType.CONFIGURATION,
        options=(
            OptionField(name="paths", label="Paths", type=OptionType.MAPPING, default={}),
            OptionField(name="port", label="Port", type=OptionType.INTEGER, default=0),
        ),
        **fields,
    )


def key(name: str) -> ConfigKey:
    return ConfigKey(key=name[:200], data_type=DataType.STRING)


class Base(ConfigurationPlugin):
    manifest: ClassVar[PluginManifest]

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("ok")

    def list_keys(self) -> list[ConfigKey]:
        return [key(name) for name in self.attack()]

    def attack(self) -> list[str]:
        return ["HEALTHY"]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        raise NotImplementedError

    def delete_key(self, key: str) -> None:
        return None


class Healthy(Base):
    manifest = _manifest("hostile-healthy")


class Hang(Base):
    """Sleeps far past any deadline."""

    manifest = _manifest("hostile-hang")

    def attack(self) -> list[str]:
        time.sleep(3600)
        return []


class Spin(Base):
    """Spins a CPU forever."""

    manifest = _manifest("hostile-spin")

    def attack(self) -> list[str]:
        while True:
            pass


class Exit(Base):
    """Ends its process without unwinding."""

    manifest = _manifest("hostile-exit")

    def attack(self) -> list[str]:
        os._exit(3)


class Segfault(Base):
    """Dereferences NULL."""

    manifest = _manifest("hostile-segfault")

    def attack(self) -> list[str]:
        ctypes.string_at(0)
        return []


class Memory(Base):
    """Allocates 4 GiB."""

    manifest = _manifest("hostile-memory")

    def attack(self) -> list[str]:
        hog = bytearray(4 * 1024**3)
        return [f"ALLOCATED_{len(hog)}"]


class ForkBomb(Base):
    """Forks 300 sleeping children that try to outlive the call."""

    manifest = _manifest("hostile-fork")

    def attack(self) -> list[str]:
        started = failed = 0
        for _ in range(300):
            try:
                pid = os.fork()
            except OSError:
                failed += 1
                continue
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            started += 1
        return [f"FORKED_{started}", f"REFUSED_{failed}"]


class Descriptors(Base):
    """Opens descriptors until refused."""

    manifest = _manifest("hostile-fds")
    held: ClassVar[list[int]] = []

    def attack(self) -> list[str]:
        try:
            while len(self.held) < 10000:
                self.held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            return [f"OPENED_{len(self.held)}", f"REFUSED_{type(exc).__name__}"]
        return [f"OPENED_{len(self.held)}"]


class StdoutFlood(Base):
    """Writes 100 MB to stdout (and some to stderr)."""

    manifest = _manifest("hostile-stdout")

    def attack(self) -> list[str]:
        line = "x" * 1023 + "\n"
        for _ in range(100 * 1024):
            sys.stdout.write(line)
        sys.stdout.flush()
        sys.stderr.write("FLOOD-MARKER on stderr\n")
        return ["FLOODED"]


class Network(Base):
    """Connects to its declared port and to one it never declared."""

    manifest = _manifest(
        "hostile-network", permissions=Permissions(network_hosts=(f"127.0.0.1:{DECLARED_PORT}",))
    )

    def attack(self) -> list[str]:
        results = []
        for label, port in (
            ("DECLARED", DECLARED_PORT),
            ("UNDECLARED", self.context.options["port"]),
        ):
            try:
                with socket.create_connection(("127.0.0.1", int(port)), timeout=2) as conn:
                    conn.sendall(b"hello")
                results.append(f"{label}_CONNECTED")
            except OSError as exc:
                results.append(f"{label}_REFUSED_{type(exc).__name__}")
        for label, family, kind in (
            ("RAW", socket.AF_INET, socket.SOCK_RAW),
            ("PACKET", socket.AF_PACKET, socket.SOCK_RAW),
        ):
            try:
                socket.socket(family, kind, 0).close()
                results.append(f"{label}_OPENED")
            except OSError as exc:
                results.append(f"{label}_REFUSED_{type(exc).__name__}")
        return results


class Secrets(Base):
    """Looks for the host's secrets in its environment, /proc and files."""

    manifest = _manifest("hostile-secrets")

    def attack(self) -> list[str]:
        found = [f"ENV_{name}={value}" for name, value in os.environ.items()]
        candidates = [f"/proc/{pid}/environ" for pid in (1, os.getppid(), 2, 3)]
        candidates += list(self.context.options["paths"].values())
        for path in candidates:
            try:
                with open(path, "rb") as handle:
                    found.append(f"READ_{path}={handle.read(4000)!r}")
            except OSError as exc:
                found.append(f"DENIED_{path}_{type(exc).__name__}")
        try:
            found.append(f"LISTED_PROC={sorted(os.listdir('/proc'))[:50]}")
        except OSError as exc:
            found.append(f"DENIED_PROC_LIST_{type(exc).__name__}")
        try:
            os.kill(int(self.context.options["paths"].get("host_pid", "0") or 0) or 1, 9)
            found.append("KILLED_HOST")
        except OSError as exc:
            found.append(f"KILL_REFUSED_{type(exc).__name__}")
        return found


class Orm(Base):
    """Tries to use the host's ORM to read every organization's credentials."""

    manifest = _manifest("hostile-orm")

    def attack(self) -> list[str]:
        try:
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.test")
            import django

            django.setup()
            from plugins_core.models import ServiceApplication

            return [f"STOLE_{row.credentials}" for row in ServiceApplication.objects.all()]
        except BaseException as exc:
            return [f"ORM_REFUSED_{type(exc).__name__}"]


class Syscalls(Base):
    """Tries what seccomp denies: ptrace, mount, namespaces, keyrings."""

    manifest = _manifest("hostile-syscalls")

    def attack(self) -> list[str]:
        libc = ctypes.CDLL(None, use_errno=True)
        attempts = {
            "PTRACE": lambda: libc.ptrace(16, 1, 0, 0),  # PTRACE_ATTACH to pid 1
            "MOUNT": lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
            "UNSHARE": lambda: libc.unshare(0x40000000),  # CLONE_NEWNET
            "KEYCTL": lambda: libc.syscall(250, 0, 0, 0, 0, 0),
            "ADD_KEY": lambda: libc.syscall(248, b"user", b"x", b"y", 1, -2),
            "SETNS": lambda: libc.setns(0, 0),
        }
        results = []
        for name, attempt in attempts.items():
            result = attempt()
            results.append(f"{name}_{'DENIED' if result == -1 else 'ALLOWED'}_{ctypes.get_errno()}")
        return results


class RaisesSystemExit(Base):
    manifest = _manifest("hostile-system-exit")

    def attack(self) -> list[str]:
        raise SystemExit(0)


class RaisesKeyboardInterrupt(Base):
    manifest = _manifest("hostile-keyboard-interrupt")

    def attack(self) -> list[str]:
        raise KeyboardInterrupt


class ReturnsNaN(Base):
    manifest = _manifest("hostile-nan")

    def list_keys(self) -> list[ConfigKey]:
        return [math.nan]  # type: ignore[list-item]


class ReturnsObject(Base):
    manifest = _manifest("hostile-object")

    def list_keys(self) -> list[ConfigKey]:
        return object()  # type: ignore[return-value]


class ReturnsHuge(Base):
    manifest = _manifest("hostile-huge")

    def list_keys(self) -> list[ConfigKey]:
        return [key("K" * 200)] * 300_000  # about 50 MB of JSON


class StorageEscape(Base):
    """Asks the host's storage for another installed plugin's (another organization's) rows."""

    manifest = _manifest("hostile-storage-escape", permissions=Permissions(storage=True))

    def attack(self) -> list[str]:
        store: Any = self.context.storage
        results = [f"OWN_{name}={store.get(name)}" for name in store.keys("")]
        channel = getattr(store, "_channel", None)
        call_id = getattr(store, "_call_id", 0)
        for extra in ({"plugin_id": 1}, {"organization": "globex"}, {"plugin": "victim"}):
            for target in self.context.options["paths"].values():
                extra = {**extra, "plugin_id": int(target)} if "plugin_id" in extra else extra
                try:
                    value = channel.ask(call_id, "storage.get", key="token", **extra)  # type: ignore[union-attr]
                    results.append(f"ESCAPED_{extra}={value}")
                except Exception as exc:
                    results.append(f"REFUSED_{type(exc).__name__}")
        return results


class ProjectEscape(Base):
    """Declares project metadata, then asks the host for another organization's project: by
    slug through ``context.projects``, and by forging a scope into the raw host request.

    ``paths`` maps a name to the slug of a project of another organization."""

    manifest = _manifest(
        "hostile-project-escape",
        api_version="1.2",
        permissions=Permissions(project_metadata=True),
    )

    def attack(self) -> list[str]:
        projects: Any = self.context.projects
        current = projects.current()
        results = [f"OWN_{current.slug}_{current.organization}" if current else "OWN_NONE"]
        missing_detail = ""
        try:
            projects.get("no-such-project-anywhere")
        except Exception as exc:
            missing_detail = str(getattr(exc, "detail", "")).replace(
                "no-such-project-anywhere", "X"
            )
        channel, call_id = projects._channel, projects._call_id
        for victim in self.context.options["paths"].values():
            try:
                found = projects.get(victim)
                results.append(f"ESCAPED_{found.organization}_{found.name}")
            except Exception as exc:
                detail = str(getattr(exc, "detail", "")).replace(victim, "X")
                same = "SAME_AS_MISSING" if detail == missing_detail else "DIFFERENT"
                results.append(f"REFUSED_{type(exc).__name__}_{same}")
            forged: tuple[dict[str, Any], ...] = (
                {"organization": "globex"},
                {"organization_id": 1},
                {"project_id": 1},
            )
            for extra in forged:
                try:
                    value = channel.ask(call_id, "project.get", slug=victim, **extra)
                    results.append(f"ESCAPED_{sorted(extra)}={value}")
                except Exception as exc:
                    results.append(f"REFUSED_{type(exc).__name__}")
        return results


class ProjectUndeclared(Base):
    """Declares no project metadata, then digs the runner's project reader out of the call's
    stack frames and asks the host through it."""

    manifest = _manifest("hostile-project-undeclared")

    def attack(self) -> list[str]:
        results = ["ABSENT" if self.context.projects is None else "PRESENT"]
        frame: Any = sys._getframe()
        reader: Any = None
        while frame is not None and reader is None:
            candidate = frame.f_locals.get("projects")
            if candidate is not None and hasattr(candidate, "current"):
                reader = candidate
            frame = frame.f_back
        if reader is None:
            return [*results, "NO_READER"]
        results.append("FOUND_READER")
        attempts: list[Any] = [reader.current]
        attempts += [
            lambda slug=slug: reader.get(slug) for slug in self.context.options["paths"].values()
        ]
        for attempt in attempts:
            try:
                value = attempt()
                results.append(f"ESCAPED_{getattr(value, 'slug', value)}")
            except Exception as exc:
                results.append(f"REFUSED_{type(exc).__name__}")
        return results


class PathEscape(Base):
    """Granted the directory of its service's ``directory`` setting (read-only), tries to
    read elsewhere, follow a symlink out, write, create, rename and execute there.

    ``paths`` maps a label to a path: ``own`` (a file in the granted directory), ``other``
    (a file in a directory not granted), ``link`` (a symlink in the granted directory to
    ``other``), ``dir`` (the granted directory) and ``script`` (an executable file in it)."""

    manifest = _manifest(
        "hostile-path-escape",
        api_version="1.2",
        permissions=Permissions(operator_path_settings=("directory",)),
    )

    def attack(self) -> list[str]:
        paths = self.context.options["paths"]
        results: list[str] = []
        for label in ("own", "other", "link"):
            try:
                with open(paths[label], "rb") as handle:
                    results.append(f"READ_{label}={handle.read(100).decode(errors='replace')}")
            except OSError as exc:
                results.append(f"DENIED_READ_{label}_{type(exc).__name__}")
        try:
            results.append(f"LISTED_dir={sorted(os.listdir(paths['dir']))}")
        except OSError as exc:
            results.append(f"DENIED_LIST_dir_{type(exc).__name__}")
        attempts = {
            "APPEND_own": lambda: open(paths["own"], "ab").close(),
            "TRUNCATE_own": lambda: os.truncate(paths["own"], 0),
            "CREATE_new": lambda: open(os.path.join(paths["dir"], "new.jsonl"), "xb").close(),
            "MKDIR_new": lambda: os.mkdir(os.path.join(paths["dir"], "newdir")),
            "REMOVE_own": lambda: os.remove(paths["own"]),
            "RENAME_own": lambda: os.rename(paths["own"], paths["own"] + ".moved"),
            "SYMLINK_new": lambda: os.symlink("/etc/shadow", os.path.join(paths["dir"], "s")),
            "EXEC_script": lambda: os.execv(paths["script"], [paths["script"]]),  # noqa: S606
        }
        for label, attempt in attempts.items():
            try:
                attempt()
                results.append(f"DONE_{label}")
            except OSError as exc:
                results.append(f"DENIED_{label}_{type(exc).__name__}")
        return results
