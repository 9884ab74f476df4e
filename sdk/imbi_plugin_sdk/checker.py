"""``imbi-plugin check``: is this distribution a plugin the host will load and can call?

Owns ``check_project(path)``, which returns a ``CheckReport`` of ``Finding``s:

1. ``pyproject.toml`` declares an ``imbi-plugin-sdk`` range that includes the installed SDK,
   and does not depend on the host (``imbi-platform``, Django);
2. it declares ``imbi.plugins`` entry points;
3. in a clean interpreter (``python -I``, the project folder first on ``sys.path``) each entry
   point imports, its class passes ``check_handler_class`` (manifest valid, api_version
   supported), its manifest round-trips through JSON, its icon exists, and the contract kit
   passes with test credentials (read-only checks; skipped with ``contract=False``, and
   reported as a warning when the backend refuses the test credentials);
4. with ``isolated=True`` (``check --isolated``), each entry point's calls run in a forked
   child confined like the platform's isolated runner (``isolated.confine``: only the
   declared network hosts, Landlock, seccomp, resource limits); reaching an undeclared host
   is a ``FAIL`` naming it.

``CheckError`` is bad input (no folder, no or unreadable ``pyproject.toml``): one line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .versions import SDK_DISTRIBUTION, InvalidRange, canonical_name, range_contains, sdk_range

__all__ = ["CheckError", "CheckReport", "Finding", "check_project"]

HOST_DISTRIBUTIONS = frozenset({"imbi-platform", "django"})
PROBE_TIMEOUT = 300


class CheckError(ValueError):
    """The PATH cannot be checked at all; the message is one line."""


@dataclass(frozen=True, slots=True)
class Finding:
    status: str  # "ok", "warn" or "FAIL"
    message: str


@dataclass(slots=True)
class CheckReport:
    path: Path
    distribution: str = ""
    version: str = ""
    findings: list[Finding] = field(default_factory=list)

    def add(self, status: str, message: str) -> None:
        self.findings.append(Finding(status, message))

    @property
    def problems(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.status == "FAIL"]

    @property
    def passed(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"imbi-plugin check: {self.distribution} {self.version} at {self.path}"]
        lines += [f"  {finding.status:<5} {finding.message}" for finding in self.findings]
        verdict = "passed" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {len(self.findings)} checks, {len(self.problems)} problem(s), "
            f"{sum(f.status == 'warn' for f in self.findings)} warning(s)"
        )
        return "\n".join(lines)


def _read_project(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise CheckError(f"{path} is not a folder")
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        raise CheckError(f"no pyproject.toml in {path}; give the folder of a plugin distribution")
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CheckError(f"{pyproject} is not valid TOML: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise CheckError(f"{pyproject} has no [project] table with a name")
    return project


def check_project(
    path: Path | str,
    *,
    contract: bool = True,
    python: str = sys.executable,
    isolated: bool = False,
) -> CheckReport:
    """Check the plugin distribution in ``path``; see the module docstring."""
    root = Path(path).resolve()
    project = _read_project(root)
    report = CheckReport(root, str(project["name"]), str(project.get("version", "")))
    raw_dependencies = project.get("dependencies", [])
    if not isinstance(raw_dependencies, list):
        report.add("FAIL", "[project].dependencies must be a list of requirement strings")
        raw_dependencies = []
    _check_dependencies(report, [str(item) for item in raw_dependencies])
    groups = project.get("entry-points", {})
    entry_points = groups.get("imbi.plugins") if isinstance(groups, dict) else None
    if isinstance(entry_points, dict) and not all(
        isinstance(v, str) for v in entry_points.values()
    ):
        report.add("FAIL", '[project.entry-points."imbi.plugins"] values must be "module:Class"')
        return report
    if not isinstance(entry_points, dict) or not entry_points:
        report.add("FAIL", 'declares no [project.entry-points."imbi.plugins"]')
        return report
    for status, message in _probe(root, dict(entry_points), contract, python, isolated):
        report.add(status, message)
    return report


def _check_dependencies(report: CheckReport, dependencies: list[str]) -> None:
    declared = sdk_range(dependencies)
    if declared is None:
        report.add(
            "FAIL",
            f"declares no {SDK_DISTRIBUTION} range in [project].dependencies "
            f'(e.g. "{SDK_DISTRIBUTION}>=1.1,<2")',
        )
    elif not declared:
        report.add("FAIL", f"depends on {SDK_DISTRIBUTION} without a version range")
    else:
        try:
            accepted = range_contains(declared, __version__)
        except InvalidRange as exc:
            report.add("FAIL", f"{SDK_DISTRIBUTION} range {declared!r} is invalid: {exc}")
        else:
            if accepted:
                report.add(
                    "ok",
                    f"{SDK_DISTRIBUTION}{declared} includes the installed SDK {__version__}",
                )
            else:
                report.add(
                    "FAIL",
                    f"requires {SDK_DISTRIBUTION}{declared} but the installed SDK is {__version__}",
                )
    for line in dependencies:
        name = line.split(";")[0].strip()
        for index, char in enumerate(name):
            if not (char.isalnum() or char in "-_."):
                name = name[:index]
                break
        if canonical_name(name) in HOST_DISTRIBUTIONS:
            report.add("FAIL", f"depends on the host ({name}); a plugin needs only the SDK")


def _probe(
    root: Path, entry_points: dict[str, Any], contract: bool, python: str, isolated: bool = False
) -> list[tuple[str, str]]:
    payload = json.dumps(
        {
            "path": str(root),
            "entry_points": entry_points,
            "contract": contract,
            "isolated": isolated,
        }
    )
    try:
        result = subprocess.run(
            [python, "-I", "-m", "imbi_plugin_sdk.checker"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            cwd=root,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [("FAIL", f"importing and checking the entry points took over {PROBE_TIMEOUT}s")]
    findings: list[tuple[str, str]] = []
    for line in result.stdout.splitlines():
        if not line.startswith(_MARK):
            continue  # anything a plugin prints on import
        try:
            status, message = json.loads(line[len(_MARK) :])
        except (ValueError, TypeError):
            continue
        findings.append((str(status), str(message)))
    if result.returncode != 0 or not findings:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        findings.append(("FAIL", f"the check process failed: {last}"))
    return findings


# --------------------------------------------------------------------------- probe side


_MARK = "@@imbi-plugin-check@@ "


def _emit(status: str, message: str) -> None:
    print(_MARK + json.dumps([status, message]), flush=True)


_RAISED_RE = re.compile(r": raised (\w+): ")


def _plugin_error_names() -> set[str]:
    from .errors import PluginError, PluginFailed

    names: set[str] = set()
    pending: list[type] = [PluginError]
    while pending:
        kind = pending.pop()
        if kind is not PluginFailed:
            names.add(kind.__name__)
        pending.extend(kind.__subclasses__())
    return names


def _refusal(factory: Any) -> str:
    """The error code a backend answers test credentials with ("" if it does not refuse)."""
    from .errors import PluginError

    try:
        factory().test_connection()
    except PluginError as exc:
        return exc.code
    except Exception:  # a plugin bug: the contract kit reports it with the details
        return ""
    return ""


def _contract(name: str, obj: Any, manifest: Any) -> None:
    """Run the contract kit against ``obj`` with test credentials; emit its findings."""
    from .context import Credentials
    from .testkit import make_context, run_contract, sample_identity

    credentials = Credentials({f.name: f"check-{f.name}" for f in manifest.credentials})

    # as on the host: an undeclared capability is absent
    overrides: dict[str, Any] = {} if manifest.permissions.project_metadata else {"projects": None}
    if manifest.requires_identity:  # contract 1.3: a sample user's token, as the host
        plugin = manifest.requires_identity.replace("*", "contract-test-identity")
        overrides["identity"] = sample_identity(plugin)

    def factory(
        cls: Any = obj, creds: Credentials = credentials, extra: dict[str, Any] = overrides
    ) -> Any:
        return cls(make_context(**extra), creds)

    refused = _refusal(factory)
    if refused:
        _emit(
            "warn",
            f"{name}: contract kit not run: with test credentials the plugin raised "
            f"{refused}; run the kit in your tests against an emulator",
        )
        return
    report = run_contract(factory)
    if report.passed:
        _emit("ok", f"{name}: contract kit, {len(report.checks)} checks passed")
    for failure in report.failures:
        raised = _RAISED_RE.search(failure)
        if raised and raised.group(1) in _plugin_error_names():
            # An SDK error is a legitimate answer to a context without real options or
            # backend (e.g. InvalidInput: no directory configured): not a contract breach.
            _emit("warn", f"{name}: contract check needs real options or a backend: {failure}")
        else:
            _emit("FAIL", f"{name}: contract: {failure}")


def _isolated(name: str, obj: Any, manifest: Any, root: Path) -> None:
    """The contract kit in a forked child confined like the platform's isolated runner."""
    import os

    from . import isolated

    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's findings are read by the parent
        code = 0
        try:
            why = isolated.confine(manifest, root)
            declared = ", ".join(manifest.permissions.network_hosts) or "no network hosts"
            if why:
                _emit("warn", f"{name}: --isolated: no kernel sandbox here ({why})")
            else:
                _emit("ok", f"{name}: --isolated: sandboxed like the platform ({declared})")
            _contract(name, obj, manifest)
            if isolated.refused:
                hosts = ", ".join(dict.fromkeys(isolated.refused))
                _emit(
                    "FAIL",
                    f"{name}: --isolated: tried to reach {hosts}, not a declared network host "
                    f"(permissions.network_hosts: {declared})",
                )
        except BaseException as exc:
            _emit("FAIL", f"{name}: --isolated: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0 and not os.WIFEXITED(status):
        _emit("FAIL", f"{name}: --isolated: the sandboxed call was killed ({status})")


def _probe_main() -> int:
    import importlib
    import importlib.resources

    from .interfaces import check_handler_class
    from .manifest import PluginManifest

    request = json.loads(sys.stdin.read())
    sys.path.insert(0, request["path"])
    for name, target in sorted(request["entry_points"].items()):
        module_name, _, attribute = str(target).partition(":")
        try:
            obj: Any = importlib.import_module(module_name.strip())
            for part in attribute.strip().split(".") if attribute else ():
                obj = getattr(obj, part)
        except Exception as exc:
            _emit("FAIL", f"{name}: cannot import {target}: {type(exc).__name__}: {exc}")
            continue
        _emit("ok", f"{name}: imports {target}")
        try:
            manifest = check_handler_class(obj)
        except Exception as exc:
            _emit("FAIL", f"{name}: {exc}")
            continue
        if PluginManifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) != manifest:
            _emit("FAIL", f"{name}: the manifest does not round-trip through JSON")
            continue
        kind = f"{manifest.plugin_type}, api {manifest.api_version}"
        _emit("ok", f"{name}: manifest {manifest.slug} is valid ({kind})")
        declared = ", ".join(manifest.permissions.describe()) or "none"
        _emit("ok", f"{name}: permissions: {declared}")
        template = manifest.service_template
        if template is not None and template.icon:
            package, _, filename = template.icon.partition(":")
            try:
                found = importlib.resources.files(package).joinpath(filename).is_file()
            except Exception:
                found = False
            if found:
                _emit("ok", f"{name}: icon {template.icon} exists")
            else:
                _emit("FAIL", f"{name}: icon {template.icon} is not in the package")
        if not request["contract"]:
            _emit("warn", f"{name}: contract kit skipped (--no-contract)")
            continue
        if request.get("isolated"):
            _isolated(name, obj, manifest, Path(request["path"]))
        else:
            _contract(name, obj, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main())
