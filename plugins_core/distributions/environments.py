"""Per-node plugin environments: one virtual environment per distribution version.

Under ``IMBI_PLUGIN_ROOT`` (one folder per node):

- ``envs/<name>-<version>-<sha12>/``: a virtual environment made by ``uv venv`` from the
  host's interpreter, holding exactly the wheels recorded at install time: the plugin's and
  its dependencies', each installed ``--no-deps --require-hashes`` by its SHA-256 (never from
  an index, never resolved again), then checked that every declared dependency is among them
  (``DependencyNotPinned`` otherwise). Plus the host's SDK and runner modules linked in (the
  wire contract must be the host's own). Isolated runners of that version start from its
  ``bin/python``; its site-packages is the only non-system folder they can read. Built in a
  temporary folder and renamed into place, so a half-built environment is never used;
  ``.imbi-ready`` marks a finished one.
- ``.imbi-retired`` in an environment no longer desired: written by ``reconcile``; ``prune``
  deletes it once it is older than the drain grace (calls that started on it have ended).
- ``wheels/<sha256>/<filename>``: the artifacts, fetched from the database.

Node-level work (``reconcile``, ``prune``) runs in the Celery worker's main process (on the
broadcast nudge and at start-up) and in ``manage.py plugin reconcile``; any process may build
a missing environment on demand (``ensure``), serialized by a file lock per environment.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings

from plugins_core.distributions.layout import READY as READY
from plugins_core.distributions.layout import RETIRED as RETIRED
from plugins_core.distributions.layout import env_path as env_path
from plugins_core.distributions.layout import node_id as node_id
from plugins_core.distributions.layout import pyvenv_cfg as pyvenv_cfg
from plugins_core.distributions.layout import root as root
from plugins_core.distributions.layout import site_packages as site_packages

logger = logging.getLogger("imbi.plugins.environments")

ENTRY_POINT_GROUP = "imbi.plugins"


class EnvironmentError_(Exception):
    """An environment could not be built; ``str()`` is a one-line reason."""

    code = "environment_failed"
    http_status = 400


class NoSpace(EnvironmentError_):
    """The plugin root's file system is full (or over quota): the server's problem, 507."""

    http_status = 507


def _disk_error(exc: OSError, what: str, folder: Path) -> EnvironmentError_:
    """A one-line reason for a failed write under the plugin root, naming the folder."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(
            f"{what}: no space left in {folder} (IMBI_PLUGIN_ROOT); free space there and retry"
        )
    return EnvironmentError_(f"{what}: {exc.strerror or type(exc).__name__} in {folder}")


class DependencyNotPinned(EnvironmentError_):
    """A wheel of the set requires a distribution the set does not hold."""

    code = "dependency_not_pinned"


@dataclass(frozen=True)
class Env:
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def site(self) -> Path:
        return site_packages(self.path)

    def entry_points(self, distribution: str) -> dict[str, str]:
        """``{name: target}`` of the ``imbi.plugins`` entry points ``distribution`` declares."""
        for dist in metadata.distributions(path=[str(self.site)]):
            if normalize(dist.metadata["Name"] or "") == normalize(distribution):
                return {
                    ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP
                }
        return {}


def normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    locks = root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(args: list[str], what: str) -> None:
    child_env = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "UV_CACHE_DIR")
    }
    child_env.setdefault("PATH", "/usr/bin:/bin")
    child_env["UV_NO_CONFIG"] = "1"
    done = subprocess.run(
        args, capture_output=True, text=True, env=child_env, timeout=300, check=False
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = " ".join(lines[-3:])[:400] or f"exit status {done.returncode}"
        if "No space left on device" in reason or "Disk quota exceeded" in reason:
            raise NoSpace(
                f"{what} failed: no space left in {root()} (IMBI_PLUGIN_ROOT); free space "
                "there and retry"
            )
        raise EnvironmentError_(f"{what} failed: {reason}")


def _link_runtime(site: Path) -> None:
    """Make the host's SDK and runner modules importable in the environment (symlinks) and
    tell the installer the SDK is present, at the host's version."""
    import imbi_plugin_sdk

    import plugins_core

    sdk_dir = Path(imbi_plugin_sdk.__file__).resolve().parent
    core_dir = Path(plugins_core.__file__).resolve().parent
    (site / "imbi_plugin_sdk").symlink_to(sdk_dir, target_is_directory=True)
    (site / "plugins_core").symlink_to(core_dir, target_is_directory=True)
    version = metadata.version("imbi-plugin-sdk")
    info = site / f"imbi_plugin_sdk-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: imbi-plugin-sdk\nVersion: {version}\n"
    )
    (info / "INSTALLER").write_text("imbi (linked from the host)\n")
    (info / "RECORD").write_text("")


def write_wheels(key: str, wheels: Mapping[str, bytes]) -> Path:
    """Put ``{filename: content}`` in a folder of its own for ``uv pip --find-links``.

    Each file is written to a temporary name next to its target and renamed into place, so a
    wheel on disk is always complete; a failed write (a full disk) removes its temporary
    file and raises ``EnvironmentError_`` naming the folder (``NoSpace`` when full)."""
    folder = root() / "wheels" / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(exc, "copying the wheels", folder) from None
    for filename, content in wheels.items():
        target = folder / Path(filename).name
        if not target.exists() or target.read_bytes() != content:  # absent, or changed on disk
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            try:
                with open(tmp, "wb") as handle:
                    handle.write(content)
                    handle.flush()
                    os.fsync(handle.fileno())
                tmp.replace(target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise _disk_error(exc, f"copying {target.name}", folder) from None
    return folder


def requirements(folder: Path, wheels: Mapping[str, bytes]) -> str:
    """One ``<wheel path> --hash=sha256:<digest>`` line per wheel: the installer takes
    exactly these bytes (a wheel file changed on disk since is refused by its hash)."""
    lines = [
        f"{folder / Path(filename).name} --hash=sha256:{hashlib.sha256(content).hexdigest()}"
        for filename, content in sorted(wheels.items())
    ]
    return "\n".join(lines) + "\n"


def check_dependencies(site: Path) -> None:
    """Every ``Requires-Dist`` of every distribution in ``site`` is satisfied within ``site``
    (the wheels were installed ``--no-deps``): nothing is fetched or resolved later."""
    from packaging.markers import UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    installed = {
        normalize(d.metadata["Name"] or ""): d.version
        for d in metadata.distributions(path=[str(site)])
    }
    for dist in metadata.distributions(path=[str(site)]):
        owner = f"{dist.metadata['Name']} {dist.version}"
        for line in dist.requires or []:
            try:
                requirement = Requirement(line)
                if requirement.marker is not None and not requirement.marker.evaluate(
                    {"extra": ""}
                ):
                    continue
            except (InvalidRequirement, UndefinedEnvironmentName) as exc:
                raise DependencyNotPinned(f"{owner}: requirement {line!r}: {exc}") from None
            found = installed.get(normalize(requirement.name))
            if found is None:
                raise DependencyNotPinned(
                    f"{owner} requires {requirement}, which is not among its pinned wheels"
                )
            if not requirement.specifier.contains(found, prereleases=True):
                raise DependencyNotPinned(
                    f"{owner} requires {requirement}, but the pinned wheel is {found}"
                )


def build(key: str, name: str, version: str, wheels: Mapping[str, bytes]) -> Env:
    """Build (or find) the environment ``key``: a venv with ``name==version`` from ``wheels``."""
    target = env_path(key)
    with _locked(key):
        if (target / READY).exists():
            with contextlib.suppress(FileNotFoundError):
                (target / RETIRED).unlink()  # desired again (a rollback): no longer draining
            return Env(target)
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        folder = write_wheels(key, wheels)
        staging = target.with_name(f".building-{key}-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _disk_error(exc, f"building {name} {version}", staging.parent) from None
        try:
            _run(
                [uv(), "venv", "--quiet", "--python", sys.executable, str(staging)],
                "creating the environment",
            )
            (staging / "pyvenv.cfg").write_text(pyvenv_cfg(), encoding="utf-8")
            _link_runtime(site_packages(staging))
            pins = staging / ".imbi-requirements.txt"
            pins.write_text(requirements(folder, wheels))
            _run(
                [
                    uv(),
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(staging / "bin" / "python"),
                    "--no-index",
                    "--no-deps",
                    "--require-hashes",
                    "-r",
                    str(pins),
                ],
                f"installing {name} {version}",
            )
            check_dependencies(site_packages(staging))
            (staging / READY).write_text(
                json.dumps({"name": name, "version": version, "key": key, "built": time.time()})
            )
            staging.rename(target)
        except OSError as exc:  # a write of ours (not uv's) failed: a full disk, most likely
            shutil.rmtree(staging, ignore_errors=True)
            raise _disk_error(exc, f"building {name} {version}", staging.parent) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("plugin environment %s built in %.2fs", key, time.monotonic() - started)
        return Env(target)


def discard(key: str) -> None:
    """Delete an environment that was built but never became desired (a refused install)."""
    with _locked(key):
        shutil.rmtree(env_path(key), ignore_errors=True)
        shutil.rmtree(root() / "wheels" / key, ignore_errors=True)


def ensure(row: Any) -> Env:
    """The environment of an ``InstalledDistribution`` on this node, built if missing."""
    target = env_path(row.env_key)
    if (target / READY).exists() and not (target / RETIRED).exists():
        return Env(target)
    return build(row.env_key, row.name, row.version, load_wheels(row))


def load_wheels(row: Any) -> dict[str, bytes]:
    from plugins_core.models import DistributionArtifact

    wheels: dict[str, bytes] = {}
    for artifact in DistributionArtifact.objects.filter(sha256__in=row.artifacts):
        content = bytes(artifact.content)
        if hashlib.sha256(content).hexdigest() != artifact.sha256:
            raise EnvironmentError_(f"artifact {artifact.filename} does not match its sha256")
        wheels[artifact.filename] = content
    if len(wheels) != len(set(row.artifacts)):
        raise EnvironmentError_(f"artifacts of {row.name} {row.version} are missing")
    return wheels


def reconcile() -> dict[str, str]:
    """Converge this node to the desired state and report it (``NodeState`` rows).

    Builds every missing environment, reports one whose files no longer match their
    manifests as failed (``integrity.check_environment``; never rebuilt over: delete it to
    rebuild), marks environments no longer desired as retired (their runners drain;
    ``prune`` deletes them later). Idempotent. Returns
    ``{distribution: status}``."""
    from plugins_core.distributions import integrity
    from plugins_core.models import InstalledDistribution, NodeState, NodeStatus, RegistryState

    node = node_id()
    generation = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    rows = list(InstalledDistribution.objects.all())
    outcome: dict[str, str] = {}
    wanted = set()
    for row in rows:
        wanted.add(row.env_key)
        try:
            env = ensure(row)
        except (EnvironmentError_, OSError, subprocess.SubprocessError) as exc:
            status, detail = NodeStatus.FAILED, str(exc)[:500]
            logger.error("plugin environment %s on %s: %s", row.env_key, node, detail)
        else:
            status, detail = NodeStatus.READY, ""
            refusal = integrity.runtime_refusal(row, env.path, rules=())  # files only
            if refusal is not None:  # shown on every node's status; never served
                status, detail = NodeStatus.FAILED, refusal[1][:500]
                logger.error("plugin environment %s on %s: %s", row.env_key, node, detail)
        _report(
            node,
            row.name,
            row.sha256,
            version=row.version,
            status=status,
            detail=detail,
            generation=generation or 0,
        )
        outcome[row.name] = status
    envs = root() / "envs"
    for path in sorted(envs.iterdir()) if envs.exists() else []:
        if path.name.startswith(".") or path.name in wanted:
            continue
        if not (path / RETIRED).exists():
            (path / RETIRED).write_text(str(time.time()))
    # The node's own row (no distribution): when it last converged, and to which generation.
    _report(node, "", "", version="", status=NodeStatus.READY, generation=generation or 0)
    current = {(row.name, row.sha256) for row in rows} | {("", "")}
    for state in NodeState.objects.filter(node=node):
        if (state.distribution, state.sha256) in current:
            continue
        if env_path(f"{state.distribution}-{state.version}-{state.sha256[:12]}").exists():
            if state.status != NodeStatus.RETIRED:
                state.status = NodeStatus.RETIRED
                state.generation = generation or 0
                state.save(update_fields=["status", "generation", "seen_at"])
        else:
            state.delete()
    return outcome


def _report(node: str, distribution: str, sha256: str, **values: Any) -> None:
    from django.db import IntegrityError, transaction

    from plugins_core.models import NodeState

    for _ in range(2):  # two processes of a node may report at once: the loser updates
        try:
            with transaction.atomic():
                NodeState.objects.update_or_create(
                    node=node, distribution=distribution, sha256=sha256, defaults=values
                )
            return
        except IntegrityError:
            continue


def prune(*, grace: float | None = None) -> list[str]:
    """Delete environments retired for longer than ``grace`` seconds (default: twice the
    plugin call deadline), and wheel folders no environment uses. Idempotent."""
    grace = float(settings.IMBI_PLUGIN_DRAIN_SECONDS) if grace is None else grace
    removed = []
    envs = root() / "envs"
    for path in sorted(envs.iterdir()) if envs.exists() else []:
        marker = path / RETIRED
        if path.name.startswith(".building-"):
            if time.time() - path.stat().st_mtime > 3600:  # a build that died mid-way
                shutil.rmtree(path, ignore_errors=True)
            continue
        if not marker.exists():
            continue
        with _locked(path.name):
            try:
                retired_at = float(marker.read_text() or 0)
            except (OSError, ValueError):
                continue
            if time.time() - retired_at < grace:
                continue
            shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(root() / "wheels" / path.name, ignore_errors=True)
            removed.append(path.name)
    if removed:
        from plugins_core.models import NodeState

        for key in removed:
            NodeState.objects.filter(node=node_id(), status="retired").filter(
                sha256__startswith=key.rsplit("-", 1)[-1]
            ).delete()
        logger.info("pruned plugin environments: %s", ", ".join(removed))
    return removed
