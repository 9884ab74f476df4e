"""The dependency wheels of a verified index artifact, fetched once, by their pinned hashes.

An index entry's ``dependencies`` are lines ``name==version --hash=sha256:<digest>`` signed by
the publisher with the rest of the entry (``imbi-plugin sign --dependency``). On the node that
installs from the index, ``fetch`` downloads exactly those wheels (``pip download --no-deps
--only-binary :all: --require-hashes``) from ``IMBI_PLUGINS_DEPENDENCY_INDEX`` (a PEP 503 index
URL, or a local folder of wheels for air-gapped platforms), and checks each file's name,
version and SHA-256 against its pin again. The wheels then go into the desired state with the
artifact (``distributions.install``): every other node installs them from the database, by
hash, without resolving or downloading anything (``environments.build``).

What is pinned: every dependency the entry lists, to one version and one SHA-256, and the
artifact itself. What is not: a dependency the plugin declares but the entry does not pin is
not fetched; the environment build then refuses the install (``dependency_not_pinned``).
Only wheels: a dependency published as a source archive only cannot be pinned this way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from packaging.utils import canonicalize_name

from plugins_core.distributions import desired as distributions
from plugins_core.supply.errors import DependencyRejected, DependencyUnavailable

__all__ = ["Pin", "fetch", "parse_pins"]

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9._+!-]+)"
    r"(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$"
)
MAX_DEPENDENCIES = distributions.MAX_WHEELS - 1


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    version: str
    hashes: frozenset[str]

    @property
    def line(self) -> str:
        hashes = " ".join(f"--hash=sha256:{h}" for h in sorted(self.hashes))
        return f"{self.name}=={self.version} {hashes}"


def parse_pins(lines: Sequence[str], owner: str) -> list[Pin]:
    """The entry's dependency lines; anything but ``name==version --hash=sha256:...`` is
    refused (no ranges, URLs, extras, markers or options to smuggle in)."""
    if len(lines) > MAX_DEPENDENCIES:
        raise DependencyRejected(f"{owner} pins more than {MAX_DEPENDENCIES} dependencies")
    pins: dict[str, Pin] = {}
    for line in lines:
        found = _PIN.match(str(line).strip())
        if found is None:
            raise DependencyRejected(
                f"{owner}: dependency {str(line)[:120]!r} is not name==version --hash=sha256:..."
            )
        name = str(canonicalize_name(found["name"]))
        if name in pins:
            raise DependencyRejected(f"{owner}: dependency {name} is pinned twice")
        hashes = frozenset(re.findall(r"[0-9a-f]{64}", found["hashes"]))
        pins[name] = Pin(name, found["version"], hashes)
    return list(pins.values())


def _source() -> list[str]:
    source = str(settings.IMBI_PLUGINS_DEPENDENCY_INDEX)
    if source.startswith(("https://", "http://")):
        return ["--index-url", source]
    return ["--no-index", "--find-links", source]


def _download(pins: Sequence[Pin], folder: Path, owner: str) -> None:
    requirements = folder / "requirements.txt"
    requirements.write_text("".join(f"{pin.line}\n" for pin in pins))
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--require-hashes",
        "--dest",
        str(folder / "wheels"),
        *_source(),
        "-r",
        str(requirements),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyUnavailable(f"{owner}: pip could not run: {exc}") from None
    if result.returncode != 0:
        lines = [" ".join(line.split()) for line in result.stderr.splitlines() if line.strip()]
        if "DO NOT MATCH THE HASHES" in result.stderr:
            which = [line for line in lines if " from " in line][:1]
            reason = "a fetched wheel does not match its pinned hash: " + " ".join(
                which + lines[-2:]
            )
        else:
            reason = " ".join(lines[-2:]) or f"exit status {result.returncode}"
        raise DependencyUnavailable(f"{owner}: {reason[:500]}")


def fetch(lines: Sequence[str], owner: str) -> list[distributions.Wheel]:
    """The wheels ``lines`` pin, each checked against its pin; ``[]`` when none."""
    pins = parse_pins(lines, owner)
    if not pins:
        return []
    with tempfile.TemporaryDirectory(prefix="imbi-deps-") as tmp:
        _download(pins, Path(tmp), owner)
        paths = sorted((Path(tmp) / "wheels").glob("*"))
        try:
            wheels = [distributions.wheel(path.name, path.read_bytes()) for path in paths]
        except distributions.DistributionError as exc:
            raise DependencyRejected(f"{owner}: {exc.detail}") from None
    by_name = {pin.name: pin for pin in pins}
    for wheel in wheels:
        pin = by_name.get(wheel.name)
        if pin is None or wheel.version != pin.version or wheel.sha256 not in pin.hashes:
            raise DependencyRejected(
                f"{owner}: {wheel.filename} (sha256 {wheel.sha256}) is not a pinned dependency"
            )
    missing = sorted(set(by_name) - {w.name for w in wheels})
    if missing:
        raise DependencyUnavailable(f"{owner}: no wheel was fetched for {', '.join(missing)}")
    return wheels
