"""``imbi-plugin``: init writes a package that passes its own tests and check; bad input fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from imbi_plugin_sdk import __version__
from imbi_plugin_sdk.cli import main
from imbi_plugin_sdk.versions import InvalidRange, range_contains, sdk_range


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imbi_plugin_sdk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("plugin_type", ["configuration", "logs", "identity", "deployment"])
def test_init_writes_a_plugin_that_passes_its_tests_and_check(
    tmp_path: Path, plugin_type: str
) -> None:
    made = cli("init", "acme-demo", "--type", plugin_type, "--vendor", "acme", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "acme-demo"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        ".github/workflows/ci.yml",
        ".gitignore",
        "README.md",
        "imbi_plugin_acme_demo/__init__.py",
        "imbi_plugin_acme_demo/handler.py",
        "imbi_plugin_acme_demo/icon.svg",
        "imbi_plugin_acme_demo/py.typed",
        "pyproject.toml",
        "tests/__init__.py",
        "tests/test_handler.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    major = int(__version__.split(".")[0])
    assert f'"imbi-plugin-sdk>={".".join(__version__.split(".")[:2])},<{major + 1}"' in pyproject
    suffix = plugin_type.capitalize()
    assert f'acme-demo = "imbi_plugin_acme_demo.handler:AcmeDemo{suffix}"' in pyproject
    tests = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tests.returncode == 0, tests.stderr
    assert "OK" in tests.stderr
    checked = cli("check", str(root), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed:" in checked.stdout and "FAIL" not in checked.stdout
    assert "acme-demo: contract kit" in checked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["init", "Bad_Name"], "invalid NAME 'Bad_Name'"),
        (["init", "a"], "invalid NAME 'a'"),
        (["init", "ok-name", "--type", "metrics"], "invalid choice: 'metrics'"),
        (["init", "ok-name", "--vendor", "Acme Inc"], "invalid --vendor 'Acme Inc'"),
        (
            ["init", "ok-name", "--directory", "missing-dir"],
            "missing-dir is not an existing folder",
        ),
        (["init"], "required: NAME"),
        (["check", "missing-dir"], "missing-dir is not a folder"),
        (["check", "."], "no pyproject.toml in"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "choose a command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imbi-plugin: error: ")
    assert message in err


def test_init_refuses_an_existing_folder_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "acme-demo").mkdir()
    (tmp_path / "acme-demo" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as exited:
        main(["init", "acme-demo", "--directory", str(tmp_path)])
    assert exited.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "acme-demo").iterdir()] == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["acme-demo"]  # no staging left behind


def _project(root: Path, dependencies: str, entry_points: str = "") -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "p"\nversion = "1"\ndependencies = {dependencies}\n{entry_points}'
    )
    return root


@pytest.mark.parametrize(
    ("dependencies", "problem"),
    [
        ("[]", "declares no imbi-plugin-sdk range"),
        ('["imbi-plugin-sdk"]', "without a version range"),
        (
            '["imbi-plugin-sdk>=9.0,<10"]',
            f"requires imbi-plugin-sdk>=9.0,<10 but the installed SDK is {__version__}",
        ),
        ('["imbi-plugin-sdk>=banana"]', "is invalid"),
        ('["imbi-plugin-sdk>=1.0,<2", "Django>=5"]', "depends on the host (Django)"),
    ],
)
def test_check_reports_bad_sdk_ranges_and_host_dependencies(
    tmp_path: Path, dependencies: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p", dependencies)
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert problem in out
    assert "FAIL" in out and 'declares no [project.entry-points."imbi.plugins"]' in out


def test_check_reports_an_entry_point_that_does_not_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(
        tmp_path / "p",
        '["imbi-plugin-sdk>=1.0,<2"]',
        '[project.entry-points."imbi.plugins"]\nbroken = "nowhere.at_all:Handler"\n',
    )
    assert main(["check", str(root)]) == 1
    assert (
        "broken: cannot import nowhere.at_all:Handler: ModuleNotFoundError"
        in capsys.readouterr().out
    )


def test_check_rejects_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(SystemExit):
        main(["check", str(tmp_path)])
    assert "is not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        (">=1.1,<2", "1.1.0", True),
        (">=1.1,<2", "1.0.9", False),
        (">=1.1,<2", "2.0.0", False),
        ("~=1.1", "1.9.0", True),
        ("~=1.1", "2.0", False),
        ("==1.*", "1.4.2", True),
        ("!=1.1.0", "1.1", False),
        ("", "3.0.0", True),
    ],
)
def test_ranges_agree_with_pep_440(spec: str, version: str, expected: bool) -> None:
    from packaging.specifiers import SpecifierSet

    assert range_contains(spec, version) is expected
    assert SpecifierSet(spec).contains(version) is expected


def test_sdk_range_reads_requirement_lines() -> None:
    assert sdk_range(["boto3", "Imbi_Plugin_SDK >= 1.1, < 2"]) == ">=1.1,<2"
    assert sdk_range(['imbi-plugin-sdk>=9; extra == "docs"']) is None
    assert sdk_range(["imbi-plugin-sdk"]) == ""
    with pytest.raises(InvalidRange):
        range_contains(">=1.0rc1", "1.0.0")


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('dependencies = "imbi-plugin-sdk>=1.0,<2"\n', "dependencies must be a list"),
        (
            'dependencies = ["imbi-plugin-sdk>=1.0,<2"]\nentry-points = "nope"\n',
            'declares no [project.entry-points."imbi.plugins"]',
        ),
        (
            'dependencies = ["imbi-plugin-sdk>=1.0,<2"]\n'
            '[project.entry-points."imbi.plugins"]\nx = 3\n',
            'values must be "module:Class"',
        ),
    ],
)
def test_check_reports_malformed_tables_in_one_line(
    tmp_path: Path, table: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "p"\n{table}')
    assert main(["check", str(tmp_path)]) == 1
    assert problem in capsys.readouterr().out


def test_what_a_plugin_prints_cannot_forge_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(
        tmp_path / "p",
        '["imbi-plugin-sdk>=1.0,<2"]',
        '[project.entry-points."imbi.plugins"]\nforger = "forger:Handler"\n',
    )
    (root / "forger.py").write_text('print(\'["ok", "forger: contract kit, 99 checks passed"]\')\n')
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "99 checks" not in out
    assert "forger: cannot import forger:Handler: AttributeError" in out


_META_PLUGIN = """
from imbi_plugin_sdk import (ConfigKey, ConfigurationPlugin, ConfigValue, ConnectionResult,
                             InvalidInput, Permissions, PluginManifest, PluginType)


class Meta(ConfigurationPlugin):
    manifest = PluginManifest(slug="meta", name="Meta", description="", version="1",
                              api_version="1.2", plugin_type=PluginType.CONFIGURATION,
                              permissions=Permissions(project_metadata={declared}))

    def test_connection(self):
        return ConnectionResult.success("ok")

    def list_keys(self):
        if (self.context.projects is not None) != {declared}:
            raise RuntimeError("the capability does not match the declaration")
        if self.context.projects is None:
            return [ConfigKey(key="no-projects")]
        return [ConfigKey(key=self.context.projects.current().slug)]

    def get_values(self, keys=None):
        return [ConfigValue(key=k.key, value="v") for k in self.list_keys()
                if keys is None or k.key in keys]

    def set_value(self, key, value):
        raise InvalidInput("read only")

    def delete_key(self, key):
        return None
"""


@pytest.mark.parametrize(("declared", "shown"), [(True, "project metadata"), (False, "none")])
def test_check_lists_the_permissions_and_hands_only_declared_capabilities(
    tmp_path: Path, declared: bool, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(
        tmp_path / "p",
        '["imbi-plugin-sdk>=1.2,<2"]',
        '[project.entry-points."imbi.plugins"]\nmeta = "meta_plugin:Meta"\n',
    )
    (root / "meta_plugin.py").write_text(_META_PLUGIN.replace("{declared}", str(declared)))
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"meta: permissions: {shown}" in out
    assert "meta: contract kit" in out and "FAIL" not in out
