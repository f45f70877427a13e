"""The package installs anywhere: ``python -m build`` makes a wheel and an sdist of the working tree, and a
fresh venv outside the repository, with nothing but that wheel installed (as ``pipx install`` would do),
runs ``drctl``: its version, ``drctl init``, ``drctl validate`` of the copied examples, and the schema.

The build runs on a copy of the tree's files (tracked and new, not ignored), so it never writes ``build/`` or
``*.egg-info`` into the repository. It needs the package index (the isolated build fetches setuptools, the
venv fetches drctl's dependencies); pip's cache makes a second run quick.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator import __version__

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = REPO / "tests" / "runbooks" / "stack-outputs" / "aws-to-azure.json"
REQUIRED = {"failback.yaml": ["-p", "recovered=az://vault/restores/20261126T000000Z-abcdef12/"]}


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


def source_copy(into: Path) -> Path:
    listed = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=REPO).stdout.split("\0")
    for name in filter(None, listed):
        source, target = REPO / name, into / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet in git
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return into


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = source_copy(tmp_path_factory.mktemp("tree") / "drctl")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, tree, cwd=tree)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of the system's Python, away from the repository, holding only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv") / "drctl"
    base = getattr(sys, "_base_executable", sys.executable)
    run(base, "-m", "venv", venv, cwd=venv.parent)
    (wheel,) = dist.glob("drctl-*.whl")
    uv = REPO / ".tools" / "uv" / "bin" / "uv"
    if uv.exists():
        # What pip would do, in a third of the time: make test installs uv first, and its cache is warm.
        run(uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel, cwd=venv.parent)
    else:
        run(venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=venv.parent)
    return venv


def clean_env(home: Path) -> dict[str, str]:
    # Nothing of the repository's: no PYTHONPATH, no venv on PATH.
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8")}


def test_the_wheel_holds_the_package_schema_and_examples_but_no_lab_or_tests(dist: Path) -> None:
    (wheel,) = dist.glob(f"drctl-{__version__}-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "orchestrator/cli.py" in names
    assert "orchestrator/schemas/runbook-v1.schema.json" in names
    examples = {p.relative_to(REPO / "runbooks").as_posix() for p in (REPO / "runbooks").rglob("*.yaml")}
    assert {n.removeprefix("orchestrator/examples/runbooks/") for n in names if "/examples/" in n} == examples
    assert not [n for n in names if n.split("/")[0] in ("tests", "localstack", "stacks", "bench")]
    metadata = zipfile.ZipFile(wheel).read(f"drctl-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}" in metadata
    pulumi = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: pulumi")]
    assert pulumi, "the stacks extra names Pulumi"
    # The CLI itself needs none: Pulumi is in the stacks extra, the policy pack's library in the dev one.
    assert all(line.endswith(('; extra == "stacks"', '; extra == "dev"')) for line in pulumi), pulumi
    assert any(line.endswith('; extra == "stacks"') for line in pulumi), pulumi
    assert list(dist.glob(f"drctl-{__version__}.tar.gz"))


def test_a_fresh_venv_outside_the_repository_runs_drctl(installed: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    drctl = installed / "bin" / "drctl"
    assert run(drctl, "--version", cwd=tmp_path, env=env).stdout.strip() == f"drctl {__version__}"
    where = run(installed / "bin" / "python", "-c", "import orchestrator; print(orchestrator.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(installed)  # the wheel's copy, not the repository's
    run(drctl, "init", "project", cwd=tmp_path, env=env)
    outputs = tmp_path / "stack-outputs.json"
    shutil.copy(OUTPUTS, outputs)
    for runbook in sorted((tmp_path / "project" / "runbooks").rglob("*.yaml")):
        params = REQUIRED.get(runbook.name, [])
        run(drctl, "validate", runbook, "--stack-outputs", outputs, *params, cwd=tmp_path, env=env)
    schema = json.loads(run(drctl, "schema", "runbook", cwd=tmp_path, env=env).stdout)
    published = json.loads((tmp_path / "project" / "schemas" / "runbook-v1.schema.json").read_text())
    assert schema == published
