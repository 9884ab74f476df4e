"""``imbi-plugin keygen|certify|sign|publish`` and ``imbi_plugin_sdk.signing``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from imbi_plugin_sdk import publishing, signing
from imbi_plugin_sdk.cli import main


def _wheel(folder: Path, *, requires: str = "imbi-plugin-sdk>=1.1,<2") -> Path:
    wheel = folder / "imbi_plugin_tiny-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("imbi_plugin_tiny/__init__.py", "")
        archive.writestr("imbi_plugin_tiny-1.0.0.data/scripts/tool", "#!python\n")
        archive.writestr(
            "imbi_plugin_tiny-1.0.0.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: imbi_plugin_tiny\nVersion: 1.0.0\n"
            f"Requires-Dist: {requires}\n",
        )
        archive.writestr("imbi_plugin_tiny-1.0.0.dist-info/RECORD", "")
    return wheel


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def test_keygen_certify_sign_publish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    for name in ("root", "index", "acme"):
        assert _cli(capsys, "keygen", name, "--directory", str(keys))[0] == 0
    assert oct((keys / "acme.key").stat().st_mode & 0o777) == "0o600"
    public = json.loads((keys / "acme.pub").read_text())
    assert "private_key" not in public
    status, out, _ = _cli(
        capsys,
        "certify",
        "--root-key", str(keys / "root.key"),
        "--subject", "acme",
        "--public-key", str(keys / "acme.pub"),
        "--output", str(tmp_path / "acme.cert.json"),
    )  # fmt: skip
    assert status == 0 and "acme (community)" in out
    certificate = json.loads((tmp_path / "acme.cert.json").read_text())
    root_public = signing.load_public_key(keys / "root.pub")
    assert publishing.certificate_subject_ok(certificate, root_public)
    assert certificate["certificate"]["verified"] is False

    wheel = _wheel(tmp_path)
    status, out, err = _cli(
        capsys,
        "sign", str(wheel),
        "--key", str(keys / "acme.key"),
        "--publisher", "acme",
        "--api-version", "1.1",
        "--permissions", '{"network_hosts": ["api.acme.test"], "storage": false}',
    )  # fmt: skip
    assert status == 0, err
    entry = json.loads(Path(str(wheel) + ".entry.json").read_text())
    assert entry["name"] == "imbi-plugin-tiny" and entry["sdk_range"] == ">=1.1,<2"
    # The file manifest: package files and METADATA; never RECORD, never scripts.
    assert sorted(entry["files"]) == [
        "imbi_plugin_tiny-1.0.0.dist-info/METADATA",
        "imbi_plugin_tiny/__init__.py",
    ]
    assert signing.verify(
        signing.load_public_key(keys / "acme.pub"),
        signing.artifact_message(entry),
        entry["signature"],
    )

    index = tmp_path / "index"
    for expected_version in (1, 2):
        status, out, err = _cli(
            capsys,
            "publish", str(index),
            str(wheel) + ".entry.json",
            "--index-key", str(keys / "index.key"),
            "--certificate", str(tmp_path / "acme.cert.json"),
            "--block", "imbi-plugin-tiny:0.9:broken",
        )  # fmt: skip
        assert status == 0, err
        assert f"version {expected_version}," in out
    document = json.loads((index / "index.json").read_text())
    signed = document["signed"]
    assert signed["blocklist"] == [
        {"plugin": "imbi-plugin-tiny", "below": "0.9", "reason": "broken"}
    ]
    assert (index / "artifacts" / wheel.name).read_bytes() == wheel.read_bytes()
    index_public = signing.load_public_key(keys / "index.pub")
    (signature,) = document["signatures"]
    assert signature["key_id"] == signing.key_id(index_public)
    assert signing.verify(index_public, signing.index_message(signed), signature["signature"])
    signed["version"] = 99
    assert not signing.verify(index_public, signing.index_message(signed), signature["signature"])


def test_transfer_and_rotate_index_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Names belong to publishers (a root-signed transfer moves one; publish refuses another
    publisher's entry otherwise), and a root-signed rotation names new index keys."""
    keys = tmp_path / "keys"
    for name in ("root", "index", "acme", "beta"):
        assert _cli(capsys, "keygen", name, "--directory", str(keys))[0] == 0
    for subject in ("acme", "beta"):
        _cli(
            capsys,
            "certify", "--root-key", str(keys / "root.key"), "--subject", subject,
            "--public-key", str(keys / f"{subject}.pub"),
            "--output", str(tmp_path / f"{subject}.cert.json"),
        )  # fmt: skip
    wheel = _wheel(tmp_path)
    entries = {}
    for subject in ("acme", "beta"):
        out = tmp_path / f"{subject}.entry.json"
        assert _cli(
            capsys,
            "sign", str(wheel), "--key", str(keys / f"{subject}.key"), "--publisher", subject,
            "--api-version", "1.1", "--permissions", "{}", "--output", str(out),
        )[0] == 0  # fmt: skip
        entries[subject] = out
    index = tmp_path / "index"
    base = ["--index-key", str(keys / "index.key"), "--name", "main", "--wheel", str(wheel)]
    certificates = ["--certificate", str(tmp_path / "acme.cert.json")]
    certificates += ["--certificate", str(tmp_path / "beta.cert.json")]
    status, _, _ = _cli(capsys, "publish", str(index), str(entries["acme"]), *base, *certificates)
    assert status == 0
    assert json.loads((index / "index.json").read_text())["signed"]["owners"] == {
        "imbi-plugin-tiny": "acme"
    }
    stamps = json.loads((index / "index.json").read_text())["signed"]["plugins"]
    assert wheel.name in stamps["imbi-plugin-tiny"]["versions"]["1.0.0"]["indexed_at"]
    status, _, err = _cli(capsys, "publish", str(index), str(entries["beta"]), *base)
    assert status == 2 and "name_not_owned: imbi-plugin-tiny belongs to publisher 'acme'" in err
    transfer = tmp_path / "tiny.transfer.json"
    status, _, err = _cli(
        capsys,
        "transfer", "--root-key", str(keys / "root.key"), "--index", "main",
        "--name", "imbi_plugin_tiny", "--from", "acme", "--to", "beta", "--output", str(transfer),
    )  # fmt: skip
    assert status == 0, err
    status, _, err = _cli(
        capsys, "publish", str(index), str(entries["beta"]), *base, "--transfer", str(transfer)
    )
    assert status == 0, err
    signed = json.loads((index / "index.json").read_text())["signed"]
    assert signed["owners"] == {"imbi-plugin-tiny": "beta"}
    record = signed["transfers"]["imbi-plugin-tiny"]
    root_public = signing.load_public_key(keys / "root.pub")
    message = signing.transfer_message(record["transfer"])
    assert signing.verify(root_public, message, record["signature"])

    rotation = tmp_path / "main.rotation.json"
    status, out, err = _cli(
        capsys,
        "rotate-index-key", "--root-key", str(keys / "root.key"), "--index", "main",
        "--new-key", str(keys / "acme.pub"), "--version-floor", "7", "--output", str(rotation),
    )  # fmt: skip
    assert status == 0 and "version floor 7" in out, err
    body = json.loads(rotation.read_text())
    assert body["rotation"]["version_floor"] == 7
    assert body["rotation"]["index_keys"] == [signing.load_public_key(keys / "acme.pub")]
    message = signing.rotation_message(body["rotation"])
    assert signing.verify(root_public, message, body["signature"])
    # a rotation signature never passes as a transfer's (domain separation)
    assert not signing.verify(
        root_public, signing.transfer_message(body["rotation"]), body["signature"]
    )


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(capsys, "keygen", "k", "--directory", str(tmp_path))[0] == 0
    status, _, err = _cli(capsys, "keygen", "k", "--directory", str(tmp_path))
    assert status == 2 and "refusing to overwrite" in err and err.count("\n") == 1
    status, _, err = _cli(capsys, "sign", str(tmp_path / "x.whl"), "--key", str(tmp_path / "k.key"),
                          "--publisher", "p")  # fmt: skip
    assert status == 2 and err == f"imbi-plugin: error: {tmp_path / 'x.whl'} is not a file\n"
    status, _, err = _cli(capsys, "sign", str(_wheel(tmp_path)), "--key", str(tmp_path / "k.pub"),
                          "--publisher", "p")  # fmt: skip
    assert status == 2 and "is not a private key file" in err
    (tmp_path / "other").mkdir()
    no_sdk = _wheel(tmp_path / "other", requires="requests")
    status, _, err = _cli(
        capsys, "sign", str(no_sdk), "--key", str(tmp_path / "k.key"),
        "--publisher", "p", "--api-version", "1.1", "--permissions", "{}",
    )  # fmt: skip
    assert status == 2 and "does not depend on imbi-plugin-sdk" in err


def test_without_cryptography_the_signing_commands_say_how_to_get_it(tmp_path: Path) -> None:
    """The SDK core stays standard-library only; Ed25519 is the [sign] extra."""
    probe = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import imbi_plugin_sdk, imbi_plugin_sdk.cli as cli, imbi_plugin_sdk.publishing\n"
        "assert 'cryptography' not in [m for m in sys.modules if sys.modules[m]]\n"
        "sys.exit(cli.main(['keygen', 'k', '--directory', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "imbi-plugin: error: signing needs the 'cryptography' package: "
        "pip install 'imbi-plugin-sdk[sign]'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_canonical_json_is_stable_and_refuses_nan() -> None:
    assert signing.canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    with pytest.raises(ValueError):
        signing.canonical_json({"x": float("nan")})
    assert signing.parse_time("2026-11-27T10:00:00Z").isoformat() == "2026-11-27T10:00:00+00:00"
    with pytest.raises(ValueError):
        signing.parse_time("2026-11-27 10:00")


def test_a_signature_for_one_purpose_never_passes_for_another(tmp_path: Path) -> None:
    private, _ = signing.write_key_files(tmp_path, "k")
    key = signing.load_private_key(private)
    body = {"name": "x"}
    signature = key.sign(signing.index_message(body))
    assert signing.verify(key.public_key, signing.index_message(body), signature)
    assert not signing.verify(key.public_key, signing.certificate_message(body), signature)
    assert not signing.verify(key.public_key, signing.artifact_message(body), signature)
    assert not signing.verify(key.public_key, signing.index_message(body), "bm90IGEgc2ln")
