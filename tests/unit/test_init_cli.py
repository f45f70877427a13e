"""``drctl init`` starts a project: the example runbooks and the schema, with each modeline pointing at the
copied schema, and nothing overwritten unless asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.commands.project import with_modeline
from orchestrator.errors import ExitCode
from tests.support.cli import assert_one_line_error, drctl

REPO = Path(__file__).resolve().parents[2]
PREFIX = "# yaml-language-server: $schema="


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}


def test_init_copies_every_example_runbook_and_the_schema(env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "dr"
    result = drctl("init", str(project), env=env)
    assert result.returncode == 0, result.stderr
    examples = sorted(p.relative_to(REPO / "runbooks") for p in (REPO / "runbooks").rglob("*.yaml"))
    copied = sorted(p.relative_to(project / "runbooks") for p in (project / "runbooks").rglob("*.yaml"))
    assert copied == examples
    schema = project / "schemas" / "runbook-v1.schema.json"
    assert schema.read_text() == (REPO / "orchestrator" / "schemas" / "runbook-v1.schema.json").read_text()
    for path in (project / "runbooks").rglob("*.yaml"):
        first, *rest = path.read_text().splitlines()
        assert (path.parent / first.removeprefix(PREFIX)).resolve() == schema.resolve(), path
        original = (REPO / "runbooks" / path.relative_to(project / "runbooks")).read_text().splitlines()
        assert rest == original[1:], path  # only the modeline differs
    # The copies are runbooks an independent validator accepts through their own modeline's schema.
    check = Path(sys.executable).with_name("check-jsonschema")
    runbooks = sorted(str(p) for p in (project / "runbooks").rglob("*.yaml"))
    checked = subprocess.run([str(check), "--schemafile", str(schema), *runbooks], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_init_never_overwrites_without_force(env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "dr"
    (project / "runbooks").mkdir(parents=True)
    mine = project / "runbooks" / "drill.yaml"
    mine.write_text("my own drill\n")
    result = drctl("init", str(project), env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "drill.yaml already exists", "--force")
    assert mine.read_text() == "my own drill\n"
    assert not (project / "schemas").exists()  # nothing written when anything would be overwritten
    assert drctl("init", str(project), "--force", env=env).returncode == 0
    assert mine.read_text() != "my own drill\n"


def test_init_into_a_file_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line_error(drctl("init", str(target), env=env), ExitCode.INVALID_INPUT, "is a file")


def test_a_runbook_without_a_modeline_gets_one() -> None:
    assert with_modeline("apiVersion: drctl/v1\n", "s.json") == f"{PREFIX}s.json\napiVersion: drctl/v1\n"
    assert with_modeline(f"{PREFIX}old.json\nx: 1\n", "new.json") == f"{PREFIX}new.json\nx: 1\n"
