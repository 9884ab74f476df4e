"""A supply chain in a temp folder: root, index and publisher keys, real wheels, an index.

``world`` builds wheels of a small configuration plugin (from ``imbi-plugin init``'s
scaffold, zipped by hand so each test is fast), signs them with the SDK's tools, publishes
them into an index folder and makes the platform follow that folder. ``site`` is this
node's plugin root (``IMBI_PLUGIN_ROOT``: one environment per installed version, and the
wheels); afterwards the process serves no runtime-installed distribution again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from imbi_plugin_sdk import publishing, signing
from imbi_plugin_sdk.scaffold import create_plugin

from plugins_core import registry
from plugins_core.distributions import runtime
from plugins_core.models import PluginIndex

NOW = signing.utcnow()
PLUGIN = "supply-demo"
DIST = "imbi-plugin-supply-demo"
PACKAGE = "imbi_plugin_supply_demo"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def library_wheel(out: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A plain library wheel (a plugin's dependency), ``files`` relative to site-packages."""
    files = dict(files)
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return wheel


def build_wheel(
    out: Path,
    *,
    version: str = "1.0.0",
    sdk_range: str = ">=1.1,<2",
    source: Path,
    extra: dict[str, bytes] | None = None,
    requires: tuple[str, ...] = (),
) -> Path:
    """A real, pip-installable wheel of the scaffolded plugin at ``version``."""
    files: dict[str, bytes] = {}
    for path in sorted((source / PACKAGE).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(source).as_posix()] = path.read_bytes()
    files.update(extra or {})
    info = f"imbi_plugin_supply_demo-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n"
        f"Requires-Dist: imbi-plugin-sdk{sdk_range}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = (
        f"[imbi.plugins]\n{PLUGIN} = {PACKAGE}.handler:SupplyDemoConfiguration\n"
    ).encode()
    files[f"{info}/top_level.txt"] = f"{PACKAGE}\n".encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"imbi_plugin_supply_demo-{version}-py3-none-any.whl"
    # Stored, not deflated: a same-length edit keeps the wheel's size (the tampering case
    # that gets past the size check; a size change is caught earlier as a size mismatch).
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            info_ = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info_, data)
    return wheel


def rezip(wheel: Path, changes: dict[str, bytes]) -> None:
    """Rewrite ``wheel`` in place with some members' content replaced (RECORD untouched);
    a replacement is padded or cut to the original length so the wheel keeps its size."""
    with zipfile.ZipFile(wheel) as archive:
        members = [(i, archive.read(i)) for i in archive.infolist()]
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for info, data in members:
            new = changes.get(info.filename, data)
            new = (new + b"#" * len(data))[: len(data)] if info.filename in changes else new
            archive.writestr(info, new)


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.keys = tmp / "keys"
        self.keys.mkdir(parents=True)
        self.root = self.key("root")
        self.index_key = self.key("index")
        self.publisher = self.key("acme")
        self.folder = tmp / "index"
        self.index_name = "curated"
        (tmp / "src").mkdir(parents=True)
        create_plugin(PLUGIN, plugin_type="configuration", vendor="supply", parent=tmp / "src")
        self.source = tmp / "src" / PLUGIN
        self.certificate = self.certify(self.publisher, "acme", verified=True)

    def key(self, name: str) -> signing.PrivateKey:
        private, _ = signing.write_key_files(self.keys, name)
        return signing.load_private_key(private)

    def certify(
        self,
        key: signing.PrivateKey,
        subject: str,
        *,
        verified: bool = True,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        root: signing.PrivateKey | None = None,
    ) -> dict[str, Any]:
        start = valid_from or NOW - dt.timedelta(days=1)
        return signing.issue_certificate(
            root or self.root,
            subject=subject,
            public_key=key.public_key,
            valid_from=start,
            valid_until=valid_until or start + dt.timedelta(days=365),
            verified=verified,
        )

    def wheel(self, version: str = "1.0.0", **kw: Any) -> Path:
        return build_wheel(self.tmp / "dist" / version, version=version, source=self.source, **kw)

    def entry(
        self,
        wheel: Path,
        *,
        key: signing.PrivateKey | None = None,
        publisher: str = "acme",
        signed_at: dt.datetime | None = None,
        dependencies: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        return publishing.sign_wheel(
            wheel,
            key or self.publisher,
            publisher=publisher,
            api_version="1.1",
            permissions={"network_hosts": [], "storage": True},
            dependencies=dependencies,
            signed_at=signed_at,
        )

    def publish(
        self,
        entries: list[dict[str, Any]] | None = None,
        wheels: list[Path] | None = None,
        certificates: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        return publishing.publish(
            self.folder,
            kw.pop("index_key", self.index_key),
            entries=entries or [],
            wheels=wheels or [],
            certificates=[self.certificate] if certificates is None else certificates,
            name=kw.pop("name", self.index_name),
            **kw,
        )

    def release(self, version: str = "1.0.0", **kw: Any) -> dict[str, Any]:
        """Build, sign and publish one version."""
        wheel = self.wheel(version)
        return self.publish([self.entry(wheel)], [wheel], **kw)

    def document(self) -> dict[str, Any]:
        return json.loads((self.folder / "index.json").read_text())

    def rewrite(self, change: Callable[[dict[str, Any]], None], *, key: Any = None) -> None:
        """Edit the signed index by hand and re-sign it (an index operator, or an attacker
        holding ``key``), keeping the version."""
        document = self.document()
        change(document["signed"])
        signer = key or self.index_key
        document["signatures"] = [
            {
                "key_id": signer.key_id,
                "signature": signer.sign(signing.index_message(document["signed"])),
            }
        ]
        (self.folder / "index.json").write_text(json.dumps(document))

    def follow(self, name: str = "curated", url: str | None = None, **kw: Any) -> PluginIndex:
        return PluginIndex.objects.create(
            name=name,
            url=url or str(self.folder),
            index_keys=kw.pop("index_keys", [self.index_key.public_key]),
            root_keys=kw.pop("root_keys", [self.root.public_key]),
            **kw,
        )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def site(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """IMBI_PLUGIN_ROOT in tmp, for a node of its own; the runtime entries dropped after."""
    root = tmp_path / "plugin-root"
    settings.IMBI_PLUGIN_ROOT = str(root)
    settings.IMBI_NODE_ID = "supply-node"
    cache.delete(runtime.CACHE_KEY)
    yield root
    registry.set_managed(())
    runtime._serving = 0
    runtime.publish(0)  # what the rolled-back database says


def installed_files(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*")) if site.exists() else []
