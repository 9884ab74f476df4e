"""What the supply-chain checks cost, against the bare operation they guard.

Side by side, interleaved in one run (no database needed):

1. Verifying a 200-plugin index (JSON parse, canonical JSON, one Ed25519 verification, the
   freshness and rollback checks) against ``json.loads`` of the same bytes.
2. The checks of one entry before its bytes are read (certificate, revocation, publisher
   signature, validity, policy, blocklist, SDK range) against nothing: reported in µs.
3. The byte checks of a 1 MiB wheel (size, SHA-256, every file against the signed manifest)
   against a bare SHA-256 of the same bytes (what hash pinning alone costs).
4. Integrity at rest for one installed distribution of 50 files (what every registry build
   adds per signed plugin) against ``os.stat`` of the same files.

Run alone with ``python -m bench.supply_chain``; ``make bench`` includes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import statistics
import tempfile
import zipfile
from pathlib import Path

from bench.timing import interleaved, print_table

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))


def _wheel(files: int, size: int) -> bytes:
    buffer = io.BytesIO()
    chunk = os.urandom(size // files)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(files):
            archive.writestr(f"imbi_plugin_bench/m{i}.py", chunk)
        archive.writestr(
            "imbi_plugin_bench-1.0.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: imbi-plugin-bench\nVersion: 1.0.0\n"
            "Requires-Dist: imbi-plugin-sdk>=1.1,<2\n",
        )
    return buffer.getvalue()


def rows(rounds: int = ROUNDS) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imbi.settings.test")
    import django

    django.setup()
    from imbi_plugin_sdk import publishing, signing

    from plugins_core.distributions import integrity
    from plugins_core.supply import index, verification
    from plugins_core.supply.signing import TrustRoot

    tmp = Path(tempfile.mkdtemp(prefix="bench-supply-"))
    keys = {name: signing.load_private_key(signing.write_key_files(tmp, name)[0]) for name in
            ("root", "index", "acme")}  # fmt: skip
    now = signing.utcnow()
    certificate = signing.issue_certificate(
        keys["root"],
        subject="acme",
        public_key=keys["acme"].public_key,
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=365),
        verified=True,
    )
    data = _wheel(50, 1024 * 1024)
    wheel = tmp / "imbi_plugin_bench-1.0.0-py3-none-any.whl"
    wheel.write_bytes(data)
    entry = publishing.sign_wheel(
        wheel, keys["acme"], publisher="acme", api_version="1.1", permissions={}
    )
    entries = []
    for i in range(200):
        clone = dict(entry, name=f"imbi-plugin-bench-{i}")
        clone["signature"] = keys["acme"].sign(signing.artifact_message(clone))
        entries.append(clone)
    publishing.publish(
        tmp / "index", keys["index"], entries=entries, certificates=[certificate], name="bench"
    )
    raw = (tmp / "index" / "index.json").read_bytes()
    root = TrustRoot.of([keys["index"].public_key], [keys["root"].public_key])
    document = index.parse_index(raw, name="bench", source=str(tmp / "index"), root=root)
    out = []

    ta, tb = interleaved(
        lambda: index.parse_index(raw, name="bench", source="", root=root),
        lambda: json.loads(raw),
        rounds,
    )
    a, b = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
    out.append(
        f"| verify a 200-plugin index ({len(raw) // 1024} KiB) vs json.loads (p50) | "
        f"{a:.2f} ms | {b:.2f} ms | {a / b:.1f}x | |"
    )

    def checks() -> None:
        verification.check_entry(document, entry, root, verified_only=True, rules=[])

    ta, _ = interleaved(checks, lambda: None, rounds)
    out.append(
        f"| checks of one entry before reading its bytes (p50) | "
        f"{statistics.median(ta) * 1e6:.0f} µs | — | — | |"
    )

    ta, tb = interleaved(
        lambda: verification.check_bytes(entry, data),
        lambda: hashlib.sha256(data).hexdigest(),
        max(rounds // 4, 20),
    )
    a, b = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
    out.append(
        f"| byte checks of a 1 MiB wheel, 50 files (size, SHA-256, file manifest) vs bare "
        f"SHA-256 (p50) | {a:.2f} ms | {b:.2f} ms | {a / b:.1f}x | |"
    )

    site = tmp / "site"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(site)
    files = entry["files"]

    class Dist:
        def locate_file(self, path: str) -> Path:
            return site / path

    ta, tb = interleaved(
        lambda: integrity._check_files(Dist(), files, "bench"),  # type: ignore[arg-type]
        lambda: [os.stat(site / p) for p in files],
        max(rounds // 4, 20),
    )
    a, b = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
    out.append(
        f"| integrity at rest, one installed distribution (50 files, 1 MiB) vs stat (p50) | "
        f"{a:.2f} ms | {b:.3f} ms | {a / b:.0f}x | |"
    )
    return out


def main() -> int:
    return print_table(rows(), ROUNDS)


if __name__ == "__main__":
    raise SystemExit(main())
