"""``imbi-plugin``: the plugin author's tool (no host, no Django).

Commands::

    imbi-plugin init NAME [--type configuration|logs] [--vendor VENDOR] [--directory DIR]
    imbi-plugin check [PATH] [--no-contract]
    imbi-plugin --version

Exit status: 0 on success, 1 when ``check`` finds a problem, 2 for bad input (a bad NAME,
an existing folder, a PATH that is not a plugin distribution). Errors are one line on
stderr, starting with ``imbi-plugin: error:``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
            report = check_project(args.path, contract=not args.no_contract)
        except CheckError as exc:
            _fail(str(exc))
        print(report.render())
        return 0 if report.passed else 1
    _fail("choose a command: init or check")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
