"""Trust by bytes, never by name: what was reviewed is recorded, and only that runs in-process.

A distribution the operator trusts by name (``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``) runs in
this process only when its installed bytes are the ones recorded in the trust lock
(``IMBI_TRUSTED_PLUGIN_LOCK``, ``trusted-plugins.lock``, written at image build by
``manage.py plugin trust --record``). Any other distribution with that name (a
dependency-confusion install of ``imbi-plugin-aws``, an edited file, another version) is
**isolated**: imported and run only in a sandboxed runner, and every surface says so
(``UNVERIFIED`` and why).

``fingerprint`` is the SHA-256 of the sorted ``path, sha256`` lines of every file of the
distribution as installed: the files its ``RECORD`` lists (less the installer's own:
``RECORD``, ``INSTALLER``, ``direct_url.json``, ... and byte code) plus every file under the
top-level packages its entry points name, wherever they are found (the source tree of an
editable install, an extra module dropped into an installed package). The lock records it
per distribution with the version. Without a lock setting (``lock=None``: development and
tests) trust follows the name, and ``check --deploy`` warns.

Imports only the standard library; ``loading`` calls ``verdict``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

LOCK_FORMAT = 1
LOCK_NAME = "trusted-plugins.lock"
VERIFIED = "trusted: bytes verified"
BY_NAME = "trusted: by name (no trust lock configured)"
UNVERIFIED = "isolated: trusted name, unverified bytes"

# Written by the installer (not part of what was reviewed), or derived (byte code).
_INSTALLER_FILES = frozenset(
    {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED", "direct_url.json"}
)
_INSTALLER_FILES |= {"uv_cache.json"}


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()


def _package_files(dist: metadata.Distribution) -> dict[str, Path]:
    """Every file under the top-level packages the distribution's entry points name."""
    files: dict[str, Path] = {}
    tops = {ep.value.split(":", 1)[0].split(".", 1)[0] for ep in dist.entry_points}
    for top in sorted(t for t in tops if t.isidentifier()):
        try:
            spec = importlib.util.find_spec(top)  # a top-level name: nothing is executed
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if not spec.submodule_search_locations:
            if spec.origin and os.path.isfile(spec.origin):
                files[Path(spec.origin).name] = Path(spec.origin)
            continue
        for location in spec.submodule_search_locations:
            base = Path(location)
            for folder, dirs, names in os.walk(base):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in names:
                    path = Path(folder) / name
                    files[f"{top}/{path.relative_to(base).as_posix()}"] = path
    return files


def distribution_files(dist: metadata.Distribution) -> dict[str, Path]:
    """``{name: path}`` of every file the fingerprint covers (module docstring)."""
    files: dict[str, Path] = {}
    for item in dist.files or ():
        relative = item.as_posix()
        parts = relative.split("/")
        if "__pycache__" in parts or relative.endswith(".pyc"):
            continue
        if parts[0].endswith(".dist-info") and parts[-1] in _INSTALLER_FILES:
            continue
        files[relative] = Path(str(dist.locate_file(item)))
    files.update(_package_files(dist))
    return files


def fingerprint(dist: metadata.Distribution) -> tuple[str, int]:
    """(SHA-256 over every covered file's name and hash, number of files)."""
    files = distribution_files(dist)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{_sha256(files[name])}\n".encode())
    return digest.hexdigest(), len(files)


def _installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def record(names: list[str] | tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
    """The lock document for the installed distributions among ``names`` (others skipped)."""
    found: dict[str, Any] = {}
    for name in sorted({_normalize(n) for n in names}):
        dist = _installed(name)
        if dist is None:
            continue
        sha, count = fingerprint(dist)
        found[name] = {"version": dist.version, "sha256": sha, "files": count}
    return {"format": LOCK_FORMAT, "distributions": found}


def write_lock(path: str | os.PathLike[str], names: Any) -> dict[str, Any]:
    """Record ``names`` into the lock at ``path`` (atomically); returns the document."""
    document = record(tuple(names))
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    partial.replace(target)
    return document


def read_lock(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """(recorded distributions, why none can be verified: ``""`` when the lock is usable)."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}, f"no trust lock at {path} (manage.py plugin trust --record writes it)"
    except (OSError, ValueError) as exc:
        return {}, f"the trust lock {path} is unreadable: {type(exc).__name__}"
    found = document.get("distributions") if isinstance(document, dict) else None
    if document.get("format") != LOCK_FORMAT or not isinstance(found, dict):
        return {}, f"the trust lock {path} is not in format {LOCK_FORMAT}"
    return found, ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a distribution may run in this process, and the words every surface shows."""

    in_process: bool
    note: str  # "" for a distribution not trusted by name


def verdict(distribution: str, trusted: frozenset[str], lock: str | None) -> Verdict:
    """The trust verdict for an installed ``distribution`` (see the module docstring)."""
    name = _normalize(distribution)
    if name not in trusted:
        return Verdict(False, "")
    if lock is None:
        return Verdict(True, BY_NAME)
    recorded, problem = read_lock(lock)
    if problem:
        return Verdict(False, f"{UNVERIFIED}: {problem}")
    expected = recorded.get(name)
    if not isinstance(expected, dict):
        return Verdict(False, f"{UNVERIFIED}: {name} is not recorded in {lock}")
    dist = _installed(name)
    if dist is None:
        return Verdict(False, f"{UNVERIFIED}: {name} is not installed")
    sha, _ = fingerprint(dist)
    if sha != expected.get("sha256"):
        seen = f"{dist.version} installed, {expected.get('version')} recorded"
        return Verdict(False, f"{UNVERIFIED}: its files differ from those recorded ({seen})")
    return Verdict(True, VERIFIED)
