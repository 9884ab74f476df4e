"""Integrity at rest: every installed plugin file against its recorded file manifest.

Runtime-installed distributions (``plugins_core.distributions.desired``, from a signed index or a
local wheel) live in one environment per version on each node (``environments``). Their
manifests come from the desired state, never from the node's disk:

- the plugin's wheel installed from a signed index: the publisher's signed ``files``
  (``IndexedArtifact.entry``, re-verified against the recorded certificate's key each time);
  status ``signed``;
- a plugin installed from a local wheel, and every dependency wheel: the manifest of the
  stored wheel itself (``DistributionArtifact``, whose SHA-256 the desired state records);
  status ``recorded``.

``check_environment`` hashes every file those manifests name in the environment's
site-packages (``file_modified`` names a changed or missing file) and refuses any file they do
not name (an added module, ``.pth`` file or ``__pycache__/*.pyc``: runners never write byte
code, and nothing else writes there), except the installer's own metadata (``RECORD``,
``INSTALLER``, ...) and the host's linked SDK and runner modules; and that the environment's
``bin/python`` is the host's interpreter and its ``pyvenv.cfg`` keeps the host's packages
out. ``runtime_refusal`` applies
it (and the blocklist) each time a process switches registry generations, before any runner
starts from the environment.

Host-environment distributions (the image's own plugins) load only when
``IMBI_PLUGINS_UNSIGNED_ALLOWED`` lists them (``"*"``: all, for development), and are checked
against the hashes of their own ``RECORD`` (``load_guard``, before the registry imports
them): an allow-list admits unsigned plugins, never modified ones.

``verify_installed`` (``manage.py plugin verify``, ``GET /api/plugins/integrity``, the admin's
install records) reports both kinds on this node.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from imbi_plugin_sdk import signing as formats
from imbi_plugin_sdk.publishing import PublishError, file_manifest
from packaging.utils import canonicalize_name

from plugins_core import registry
from plugins_core.distributions import blocklist, layout
from plugins_core.distributions.errors import (
    CertificateInvalid,
    FileModified,
    PublisherSignatureInvalid,
    SupplyChainError,
    UnsignedPlugin,
)

__all__ = [
    "IntegrityResult",
    "check_distribution",
    "check_environment",
    "load_guard",
    "runtime_refusal",
    "verify_installed",
]

logger = logging.getLogger(__name__)

# Written (or rewritten) by the installer (uv) into each .dist-info; never imported, and not
# part of any wheel's manifest (``publishing.wheel_install_path``).
INSTALLER_FILES = frozenset(
    {
        "RECORD",
        "RECORD.jws",
        "RECORD.p7s",
        "INSTALLER",
        "REQUESTED",
        "direct_url.json",
        "uv_cache.json",
    }
)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _check_signed(record: Mapping[str, Any], distribution: str) -> Mapping[str, str]:
    """The signed entry's file manifest, after re-verifying the publisher's signature."""
    entry, certificate = record.get("entry"), record.get("certificate")
    if not isinstance(entry, dict) or not isinstance(certificate, dict):
        raise FileModified(f"{distribution}: the install record is malformed")
    body = certificate.get("certificate") or {}
    public_key = body.get("public_key", "")
    try:
        ok = entry.get("key_id") == formats.key_id(public_key) and formats.verify(
            public_key, formats.artifact_message(entry), entry.get("signature")
        )
    except formats.KeyFileError:
        raise CertificateInvalid(f"{distribution}: the recorded certificate is malformed") from None
    if not ok:
        raise PublisherSignatureInvalid(
            f"{distribution}: the recorded file manifest is not signed by its publisher"
        )
    files = entry.get("files")
    if not isinstance(files, dict):
        raise FileModified(f"{distribution}: the install record has no file manifest")
    return files


def _check_file(path: Path, relative: str, expected: str, name: str, source: str) -> None:
    """``FileModified`` naming ``relative`` unless ``path`` hashes to ``expected``."""
    actual = _sha256(path)
    if actual is None:
        raise FileModified(f"{name}: installed file {relative} is missing", file=relative)
    if actual != expected:
        raise FileModified(
            f"{name}: installed file {relative} was modified (sha256 {actual}, "
            f"{source} {expected})",
            file=relative,
        )


def _check_files(dist: metadata.Distribution, files: Mapping[str, str], name: str) -> int:
    for relative, expected in sorted(files.items()):
        _check_file(Path(str(dist.locate_file(relative))), relative, expected, name, "signed")
    return len(files)


def _record_hashes(dist: metadata.Distribution) -> dict[str, str]:
    """The installer's own RECORD (``path,sha256=urlsafe-b64,size``) of an unsigned plugin."""
    text = dist.read_text("RECORD") or ""
    hashes: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or "__pycache__/" in row[0]:
            continue  # byte code is derived and may be rewritten by the interpreter
        if len(row) >= 2 and row[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(row[1][7:] + "=" * (-len(row[1][7:]) % 4))
            hashes[row[0]] = raw.hex()
    return hashes


def _allowed_unsigned(name: str) -> bool:
    from django.conf import settings

    allowed = {canonicalize_name(n) if n != "*" else n for n in _setting_list(settings)}
    return "*" in allowed or canonicalize_name(name) in allowed


def _setting_list(settings: Any) -> list[str]:
    return list(getattr(settings, "IMBI_PLUGINS_UNSIGNED_ALLOWED", []))


@dataclass(frozen=True, slots=True)
class IntegrityResult:
    distribution: str
    version: str
    status: str  # "signed", "unsigned-allowed", or the error code
    detail: str
    files: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("signed", "recorded", "unsigned-allowed")


def check_distribution(dist: metadata.Distribution) -> IntegrityResult:
    """Verify one host-environment distribution; raises its ``SupplyChainError`` when refused."""
    name = canonicalize_name(dist.metadata["Name"] or "")
    version = dist.version
    if not _allowed_unsigned(name):
        raise UnsignedPlugin(
            f"{name} {version} is in the host environment, was not installed from a signed "
            "index (manage.py plugin install NAME) and is not on IMBI_PLUGINS_UNSIGNED_ALLOWED",
            distribution=name,
        )
    count = _check_files(dist, _record_hashes(dist), name)
    return IntegrityResult(
        name, version, "unsigned-allowed", f"unsigned, allowed; {count} files match RECORD", count
    )


# --- runtime-installed distributions (one environment per version) -------------------------

_wheel_manifests: dict[str, dict[str, str]] = {}  # by wheel SHA-256: immutable


def _wheel_bytes(sha256: str, folder: Path) -> bytes:
    """A stored wheel: this node's copy when it still matches, else the database's."""
    from plugins_core.models import DistributionArtifact

    found = DistributionArtifact.objects.filter(sha256=sha256).values_list("filename", flat=True)
    filename = found.first()
    if filename is None:
        raise FileModified(f"the stored wheel sha256 {sha256} is missing from the desired state")
    with contextlib.suppress(OSError):
        data = (folder / Path(filename).name).read_bytes()
        if hashlib.sha256(data).hexdigest() == sha256:
            return data
    artifact = DistributionArtifact.objects.get(sha256=sha256)
    data = bytes(artifact.content)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FileModified(f"the stored wheel {filename} does not match its sha256")
    return data


def wheel_manifest(sha256: str, folder: Path) -> dict[str, str]:
    """``{installed path: sha256}`` of a stored wheel (cached: a wheel's bytes never change)."""
    files = _wheel_manifests.get(sha256)
    if files is None:
        try:
            with zipfile.ZipFile(io.BytesIO(_wheel_bytes(sha256, folder))) as archive:
                files = file_manifest(archive)
        except (zipfile.BadZipFile, PublishError) as exc:
            raise FileModified(
                f"the stored wheel sha256 {sha256[:16]} is unreadable: {exc}"
            ) from None
        _wheel_manifests[sha256] = files
    return files


def _expected(row: Any, folder: Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """(``signed``|``recorded``, ``{path: (sha256, whose)}``) for every wheel of ``row``."""
    from plugins_core.models import IndexedArtifact

    status = "recorded"
    expected: dict[str, tuple[str, str]] = {}
    for sha in sorted(set(row.artifacts or [])):
        for path, digest in wheel_manifest(sha, folder).items():
            expected[path] = (digest, sha)
    record = IndexedArtifact.objects.filter(distribution=row.name, sha256=row.sha256).first()
    if record is not None:
        signed = _check_signed({"entry": record.entry, "certificate": record.certificate}, row.name)
        if dict(signed) != wheel_manifest(row.sha256, folder):
            raise FileModified(f"{row.name}: the stored wheel differs from the signed manifest")
        status = "signed"
    return status, expected


def _linked_runtime() -> dict[str, Path]:
    """The host's modules linked into every environment (``environments._link_runtime``)."""
    import imbi_plugin_sdk

    import plugins_core

    return {
        "imbi_plugin_sdk": Path(imbi_plugin_sdk.__file__).resolve().parent,
        "plugins_core": Path(plugins_core.__file__).resolve().parent,
    }


def _allowed_extra(relative: str) -> bool:
    top, _, rest = relative.partition("/")
    if top.endswith(".dist-info") and rest in INSTALLER_FILES:
        return True
    sdk = f"imbi_plugin_sdk-{metadata.version('imbi-plugin-sdk')}.dist-info"
    return top == sdk and rest in ("METADATA", "INSTALLER", "RECORD")


def _check_interpreter(env: Path, name: str) -> None:
    """The environment's interpreter is the host's, and its ``pyvenv.cfg`` is byte for byte
    the one the platform wrote (``layout.pyvenv_cfg``): nothing is parsed out of it, so
    no line trick (a form feed, a second ``home``) reads one way here and another way to an
    interpreter. Runners never start from ``bin/python`` (the host's interpreter, ``-I -S``)."""
    import sys

    python = env / "bin" / "python"
    if python.resolve() != Path(sys.executable).resolve():
        raise FileModified(
            f"{name}: bin/python of its environment is not the host's interpreter",
            file="bin/python",
        )
    try:
        config = (env / "pyvenv.cfg").read_bytes()
    except OSError:
        raise FileModified(f"{name}: pyvenv.cfg is missing", file="pyvenv.cfg") from None
    if config != layout.pyvenv_cfg().encode():
        raise FileModified(
            f"{name}: pyvenv.cfg of its environment was modified (it differs from the one "
            "the platform wrote)",
            file="pyvenv.cfg",
        )


# environment path -> (name, version, status, expected files): what the last full check of
# that environment proved; a runner start checks the files against it (``check_at_start``).
_proven: dict[str, tuple[str, str, str, dict[str, tuple[str, str]]]] = {}


def check_environment(row: Any, env: Path) -> IntegrityResult:
    """Every file of ``row``'s environment ``env`` against its manifests (module docstring)."""

    status, expected = _expected(row, layout.root() / "wheels" / row.env_key)
    result = _check_tree(row.name, row.version, env, status, expected)
    _proven[os.path.realpath(env)] = (row.name, row.version, status, expected)
    return result


def check_at_start(env: str) -> None:
    """Before a runner starts from ``env``: every file against the manifests proven at the
    last full check (no database query), or a full check when this process has none.
    ``PluginFailed`` (``file_modified: ...``) refuses the start."""
    from imbi_plugin_sdk import PluginFailed

    path = Path(env)
    try:
        proven = _proven.get(os.path.realpath(env))
        if proven is None:
            from plugins_core.models import InstalledDistribution

            key = path.name
            row = next((r for r in InstalledDistribution.objects.all() if r.env_key == key), None)
            if row is None or path.parent != layout.root() / "envs":
                raise FileModified(f"{key}: no installed distribution uses this environment")
            check_environment(row, path)
        else:
            _check_tree(proven[0], proven[1], path, proven[2], proven[3])
    except SupplyChainError as exc:
        _proven.pop(os.path.realpath(env), None)
        logger.error("plugin runner refused at start: %s", exc)
        raise PluginFailed(f"plugin runner refused at start: {exc.code}: {exc.detail}") from None


def _check_tree(
    name: str, version: str, env: Path, status: str, expected: dict[str, tuple[str, str]]
) -> IntegrityResult:

    _check_interpreter(env, name)
    site = layout.site_packages(env)
    source = "signed" if status == "signed" else "recorded"
    for relative, (digest, _) in sorted(expected.items()):
        _check_file(site / relative, relative, digest, name, source)
    linked = _linked_runtime()
    for folder, dirs, files in os.walk(site):
        base = Path(folder)
        for entry in sorted(dirs):
            path = base / entry
            relative = path.relative_to(site).as_posix()
            if path.is_symlink() and linked.get(relative) != path.resolve():
                raise FileModified(
                    f"{name}: unexpected link {relative} in its environment", file=relative
                )
        for entry in sorted(files):
            relative = (base / entry).relative_to(site).as_posix()
            if relative in expected or _allowed_extra(relative):
                continue
            raise FileModified(
                f"{name}: unexpected file {relative} in its environment (not in any "
                "manifest of its wheels)",
                file=relative,
            )
    count = len(expected)
    return IntegrityResult(name, version, status, f"{count} files match", count)


def runtime_refusal(
    row: Any, env: Path, rules: Iterable[blocklist.BlockRule] | None = None
) -> tuple[registry.Status, str] | None:
    """Why ``row`` must not serve on this node (blocklisted, modified), or ``None``."""
    rules = current_block_rules() if rules is None else rules
    rule = blocklist.blocked(rules, row.name, row.version)
    if rule is not None:
        return registry.Status.BLOCKED, rule.message(row.name, row.version)
    try:
        check_environment(row, env)
    except SupplyChainError as exc:
        return registry.Status.MODIFIED, f"{exc.code}: {exc.detail}"
    except Exception as exc:  # fail closed: an environment that cannot be checked is not used
        return registry.Status.MODIFIED, f"integrity check failed: {type(exc).__name__}: {exc}"
    return None


def plugin_distributions() -> list[metadata.Distribution]:
    """Every installed distribution with an ``imbi.plugins`` entry point, once each."""
    seen: dict[str, metadata.Distribution] = {}
    for ep in metadata.entry_points(group=registry.ENTRY_POINT_GROUP):
        if ep.dist is not None:
            seen.setdefault(canonicalize_name(ep.dist.metadata["Name"] or ""), ep.dist)
    return [seen[name] for name in sorted(seen)]


def verify_installed() -> list[IntegrityResult]:
    """``manage.py plugin verify``: every plugin distribution on this node; never raises."""
    from plugins_core.models import InstalledDistribution

    results = []
    for dist in plugin_distributions():
        try:
            results.append(check_distribution(dist))
        except SupplyChainError as exc:
            name = canonicalize_name(dist.metadata["Name"] or "")
            results.append(IntegrityResult(name, dist.version, exc.code, exc.detail))
    for row in InstalledDistribution.objects.order_by("name"):
        env = layout.env_path(row.env_key)
        if not (env / layout.READY).exists():
            results.append(
                IntegrityResult(
                    row.name,
                    row.version,
                    "environment_missing",
                    f"{row.name} {row.version} has no environment on node "
                    f"{layout.node_id()} (manage.py plugin reconcile builds it)",
                )
            )
            continue
        try:
            results.append(check_environment(row, env))
        except SupplyChainError as exc:
            results.append(IntegrityResult(row.name, row.version, exc.code, exc.detail))
    return results


# --- at load ------------------------------------------------------------------------------


def current_block_rules() -> list[blocklist.BlockRule]:
    """The blocklists of every followed index (last verified document) and the setting."""
    from django.conf import settings

    rules = blocklist.block_rules(getattr(settings, "IMBI_PLUGINS_BLOCKLIST", []), "this platform")
    try:
        from plugins_core.models import PluginIndex

        # Only the blocklists: an index document carries every entry's file manifest.
        for name, lines in PluginIndex.objects.filter(enabled=True).values_list(
            "name", "document__blocklist"
        ):
            if isinstance(lines, list):
                rules += blocklist.block_rules(lines, f"index {name!r}")
    except Exception as exc:  # no database yet (start-up, migrations): say so, go on
        logger.warning("plugin blocklist from the indexes unavailable: %s", type(exc).__name__)
    return rules


def load_guard(
    candidates: Iterable[registry.Candidate],
) -> dict[str, tuple[registry.Status, str]]:
    """Per distribution: a refusal (status, reason) the registry applies before importing."""
    rules = current_block_rules()
    refusals: dict[str, tuple[registry.Status, str]] = {}
    distributions = {canonicalize_name(c.distribution) for c in candidates if c.distribution}
    for dist in plugin_distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name not in distributions:
            continue
        rule = blocklist.blocked(rules, name, dist.version)
        if rule is not None:
            refusals[name] = (registry.Status.BLOCKED, rule.message(name, dist.version))
            continue
        try:
            check_distribution(dist)
        except UnsignedPlugin as exc:
            refusals[name] = (registry.Status.UNSIGNED, exc.detail)
        except SupplyChainError as exc:
            refusals[name] = (registry.Status.MODIFIED, f"{exc.code}: {exc.detail}")
    return refusals
