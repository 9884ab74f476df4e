"""``imbi-plugin``: the plugin author's tool (no host, no Django).

Commands::

    imbi-plugin init NAME [--type configuration|logs|identity|deployment] [--vendor VENDOR]
                          [--directory DIR]
    imbi-plugin check [PATH] [--no-contract] [--isolated]
    imbi-plugin keygen NAME [--directory DIR]
    imbi-plugin certify --root-key ROOT.key --subject NAME --public-key NAME.pub [--verified]
    imbi-plugin sign WHEEL --key NAME.key --publisher NAME [--output ENTRY.json]
    imbi-plugin publish INDEX_DIR --index-key INDEX.key [ENTRY.json ...] [--wheel WHEEL ...]
                        [--transfer NAME.transfer.json]
    imbi-plugin transfer --root-key ROOT.key --index INDEX --name DIST --from OLD --to NEW
    imbi-plugin rotate-index-key --root-key ROOT.key --index INDEX --new-key NEW.pub
                        --version-floor N
    imbi-plugin --version

``keygen``, ``certify``, ``sign``, ``publish``, ``transfer`` and ``rotate-index-key`` need
Ed25519 from the optional ``cryptography`` package (``pip install 'imbi-plugin-sdk[sign]'``);
without it they stop with a one-line error and the rest of the tool works.

Exit status: 0 on success, 1 when ``check`` finds a problem, 2 for bad input (a bad NAME,
an existing folder, a PATH that is not a plugin distribution). Errors are one line on
stderr, starting with ``imbi-plugin: error:``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._version import __version__
from .checker import CheckError, check_project
from .manifest import SDK_API_VERSION
from .scaffold import PLUGIN_TYPES, ScaffoldError, create_plugin

__all__ = ["main"]

PROG = "imbi-plugin"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {PROG} --help)")


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Create and check Imbi plugins.")
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} (imbi-plugin-sdk {__version__}, plugin contract {SDK_API_VERSION})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    init = commands.add_parser("init", help="write a new plugin package into ./NAME")
    init.add_argument("name", metavar="NAME", help="plugin slug, e.g. acme-demo")
    init.add_argument("--type", dest="plugin_type", default="configuration", choices=PLUGIN_TYPES)
    init.add_argument("--vendor", help="the service's vendor slug (default: NAME)")
    init.add_argument(
        "--directory", type=Path, default=Path(), help="where to create NAME/ (default: .)"
    )
    check = commands.add_parser("check", help="check a plugin distribution (default: .)")
    check.add_argument("path", metavar="PATH", nargs="?", type=Path, default=Path())
    check.add_argument(
        "--no-contract", action="store_true", help="skip the contract kit (needs no backend)"
    )
    check.add_argument(
        "--isolated",
        action="store_true",
        help="run the plugin's calls in the platform's sandbox: only its declared network "
        "hosts are reachable (Landlock, seccomp, resource limits on Linux)",
    )
    _signing_commands(commands)
    return parser


def _signing_commands(commands: Any) -> None:
    keygen = commands.add_parser("keygen", help="create an Ed25519 key pair NAME.key/NAME.pub")
    keygen.add_argument("name", metavar="NAME")
    keygen.add_argument("--directory", type=Path, default=Path())
    certify = commands.add_parser("certify", help="issue a publisher certificate (root key)")
    certify.add_argument("--root-key", type=Path, required=True)
    certify.add_argument("--subject", required=True, help="the publisher's name")
    certify.add_argument("--public-key", required=True, help="the publisher's .pub file")
    certify.add_argument("--verified", action="store_true", help="a verified publisher")
    certify.add_argument("--valid-from", help="UTC time (default: now)")
    certify.add_argument("--valid-days", type=int, default=365)
    certify.add_argument("--output", type=Path, help="default: SUBJECT.cert.json")
    sign = commands.add_parser("sign", help="sign a built wheel; writes its index entry")
    sign.add_argument("wheel", type=Path, metavar="WHEEL")
    sign.add_argument("--key", type=Path, required=True, help="the publisher's .key file")
    sign.add_argument("--publisher", required=True)
    sign.add_argument("--url", help="where the index serves it (default: artifacts/WHEEL)")
    sign.add_argument("--api-version", help="default: read from the wheel's manifests")
    sign.add_argument("--permissions", help="JSON; default: read from the wheel's manifests")
    sign.add_argument(
        "--dependency",
        action="append",
        default=[],
        help="a pinned dependency: 'name==1.2 --hash=sha256:HEX' (repeatable)",
    )
    sign.add_argument("--output", type=Path, help="default: WHEEL.entry.json beside the wheel")
    publish = commands.add_parser("publish", help="add entries to an index folder and re-sign")
    publish.add_argument("index", type=Path, metavar="INDEX_DIR")
    publish.add_argument("entries", type=Path, nargs="*", metavar="ENTRY.json")
    publish.add_argument("--index-key", type=Path, required=True)
    publish.add_argument("--name", help="the index's name (new index: default folder name)")
    publish.add_argument(
        "--wheel",
        type=Path,
        action="append",
        default=[],
        help="a wheel to copy into INDEX_DIR/artifacts (default: the one beside ENTRY.json)",
    )
    publish.add_argument("--certificate", type=Path, action="append", default=[])
    publish.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="PLUGIN:LOWEST_GOOD[:REASON]",
        help="versions of PLUGIN below LOWEST_GOOD must not be installed or loaded",
    )
    publish.add_argument("--revoke", action="append", default=[], metavar="SERIAL[:REASON]")
    publish.add_argument(
        "--transfer",
        type=Path,
        action="append",
        default=[],
        help="a root-signed name transfer (imbi-plugin transfer) to file in the index",
    )
    publish.add_argument("--expires-days", type=int, default=30)
    transfer = commands.add_parser(
        "transfer", help="move a distribution name to another publisher (root key)"
    )
    transfer.add_argument("--root-key", type=Path, required=True)
    transfer.add_argument("--index", required=True, help="the index's name")
    transfer.add_argument("--name", required=True, help="the distribution name")
    transfer.add_argument("--from", dest="from_publisher", default="", help="its owner now")
    transfer.add_argument("--to", dest="to_publisher", required=True, help="its new owner")
    transfer.add_argument("--output", type=Path, help="default: NAME.transfer.json")
    rotate = commands.add_parser(
        "rotate-index-key",
        help="replace an index's keys and set a new version floor (root key)",
    )
    rotate.add_argument("--root-key", type=Path, required=True)
    rotate.add_argument("--index", required=True, help="the index's name")
    rotate.add_argument(
        "--new-key", action="append", required=True, help="a new index key's .pub file"
    )
    rotate.add_argument(
        "--version-floor", type=int, required=True, help="the next index version to accept"
    )
    rotate.add_argument("--output", type=Path, help="default: INDEX.rotation.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError:
        _fail(f"{path} is not JSON")


def _signing(args: argparse.Namespace) -> int:
    from . import publishing, signing
    from .versions import canonical_name

    if args.command == "keygen":
        private, public = signing.write_key_files(args.directory, args.name)
        print(f"wrote {private} (private: keep it secret) and {public}")
        return 0
    if args.command == "certify":
        root = signing.load_private_key(args.root_key)
        publisher_key = signing.load_public_key(args.public_key)
        start = signing.parse_time(args.valid_from) if args.valid_from else signing.utcnow()
        if args.valid_days < 1:
            _fail("--valid-days must be at least 1")
        certificate = signing.issue_certificate(
            root,
            subject=args.subject,
            public_key=publisher_key,
            valid_from=start,
            valid_until=start + dt.timedelta(days=args.valid_days),
            verified=args.verified,
        )
        out = args.output or Path(f"{args.subject}.cert.json")
        out.write_text(json.dumps(certificate, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}: {args.subject} ({'verified' if args.verified else 'community'})")
        return 0
    if args.command == "sign":
        key = signing.load_private_key(args.key)
        permissions = None
        if args.permissions is not None:
            try:
                permissions = json.loads(args.permissions)
            except ValueError:
                _fail("--permissions must be JSON")
        entry = publishing.sign_wheel(
            args.wheel,
            key,
            publisher=args.publisher,
            url=args.url,
            api_version=args.api_version,
            permissions=permissions,
            dependencies=args.dependency,
        )
        out = args.output or args.wheel.with_name(args.wheel.name + ".entry.json")
        out.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}: {entry['name']} {entry['version']} sha256 {entry['sha256']}")
        return 0
    if args.command == "transfer":
        root = signing.load_private_key(args.root_key)
        record = signing.issue_transfer(
            root,
            index=args.index,
            name=canonical_name(args.name),
            from_publisher=args.from_publisher,
            to_publisher=args.to_publisher,
        )
        out = args.output or Path(f"{canonical_name(args.name)}.transfer.json")
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}: {args.name} {args.from_publisher!r} -> {args.to_publisher!r}")
        return 0
    if args.command == "rotate-index-key":
        root = signing.load_private_key(args.root_key)
        try:
            record = signing.issue_rotation(
                root,
                index=args.index,
                index_keys=[signing.load_public_key(k) for k in args.new_key],
                version_floor=args.version_floor,
            )
        except ValueError as exc:
            _fail(str(exc))
        out = args.output or Path(f"{args.index}.rotation.json")
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}: index {args.index!r}, version floor {args.version_floor}")
        return 0
    index_key = signing.load_private_key(args.index_key)
    blocks = []
    for text in args.block:
        plugin, _, rest = text.partition(":")
        lowest, _, reason = rest.partition(":")
        if not plugin or not lowest:
            _fail(f"--block {text!r}: use PLUGIN:LOWEST_GOOD[:REASON]")
        blocks.append({"plugin": plugin, "below": lowest, "reason": reason})
    revocations = []
    for text in args.revoke:
        serial, _, reason = text.partition(":")
        revocations.append(
            {
                "serial": serial,
                "reason": reason,
                "revoked_at": signing.format_time(signing.utcnow()),
            }
        )
    if args.expires_days < 1:
        _fail("--expires-days must be at least 1")
    entries = [_read_json(p) for p in args.entries]
    wheels = list(args.wheel)
    for path, entry in zip(args.entries, entries, strict=True):
        beside = path.parent / str(entry.get("filename", "")) if isinstance(entry, dict) else None
        if beside is not None and beside.is_file() and beside not in wheels:
            wheels.append(beside)
    document = publishing.publish(
        args.index,
        index_key,
        entries=entries,
        wheels=wheels,
        certificates=[_read_json(p) for p in args.certificate],
        blocklist=blocks,
        revocations=revocations,
        transfers=[_read_json(p) for p in args.transfer],
        expires_in=dt.timedelta(days=args.expires_days),
        name=args.name,
    )
    signed = document["signed"]
    print(
        f"published {args.index / publishing.INDEX_FILE}: index {signed['name']!r} "
        f"version {signed['version']}, expires {signed['expires']}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse cannot give ENTRY.json files after options to a "*" positional itself.
        if args.command == "publish" and not any(e.startswith("-") for e in extra):
            args.entries = [*args.entries, *(Path(e) for e in extra)]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "init":
        try:
            target = create_plugin(
                args.name,
                plugin_type=args.plugin_type,
                vendor=args.vendor,
                parent=args.directory,
            )
        except ScaffoldError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"cannot write the plugin: {exc.strerror or exc}")
        print(f"created {target}: pip install -e '{target}[test]', then run its tests and")
        print(f"  {PROG} check {target}")
        return 0
    if args.command == "check":
        try:
            report = check_project(args.path, contract=not args.no_contract, isolated=args.isolated)
        except CheckError as exc:
            _fail(str(exc))
        print(report.render())
        if not report.passed:  # the main problem, as one line on stderr
            problems = report.problems
            first = next((p for p in problems if "--isolated:" in p.message), problems[0])
            print(f"{PROG}: error: {first.message}", file=sys.stderr)
        return 0 if report.passed else 1
    if args.command in ("keygen", "certify", "sign", "publish", "transfer", "rotate-index-key"):
        from .publishing import PublishError
        from .signing import KeyFileError, SigningUnavailable

        try:
            return _signing(args)
        except (SigningUnavailable, KeyFileError, PublishError) as exc:
            _fail(str(exc))
        except ValueError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    _fail("choose a command: init, check, keygen, certify, sign or publish")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
