"""Integration: preview, deploy and destroy the ``lab`` stack against LocalStack through the Automation API.

Needs the Pulumi CLI (which downloads the aws plugin on first use) and the running lab. Skipped without the
CLI; without the lab, the shared ``lab_env`` fixture skips it (or fails it under ``DRCTL_REQUIRE_LAB=1``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.stack_outputs import contract_field_names, parse_stack_outputs
from tests.stacks.pulumi_harness import ROOT

NO_CLI = "no Pulumi CLI on PATH; the Pulumi CLI and provider plugins cannot be installed from the package registries"


@pytest.fixture
def lab_project(tmp_path: Path) -> Path:
    """A copy of the project, so `pulumi stack init` cannot write a secrets salt into the checked-in config."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "stacks", project / "stacks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    # Pulumi.yaml names the virtualenv relative to the project directory.
    (project / ".venv").symlink_to(ROOT / ".venv")
    return project


@pytest.mark.lab
@pytest.mark.skipif(shutil.which("pulumi") is None, reason=NO_CLI)
def test_lab_stack_previews_deploys_and_destroys(lab_env: dict[str, str], lab_project: Path, tmp_path: Path) -> None:
    from pulumi import automation as auto

    state = tmp_path / "state"
    state.mkdir()
    options = auto.LocalWorkspaceOptions(
        work_dir=str(lab_project),
        env_vars={"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "lab-only"},
    )
    stack = auto.create_or_select_stack("lab", work_dir=str(lab_project), opts=options)
    # The lab may listen on another port (DRCTL_LAB_AWS_PORT); this edits the copy, not the checked-in file.
    endpoint = auto.ConfigValue(lab_env["AWS_ENDPOINT_URL"].rstrip("/"))
    stack.set_config("drctl:aws.localstack_endpoint", endpoint, path=True)
    try:
        preview = stack.preview()
        # OpType is a str enum that hashes by member name, so compare rather than index.
        assert sum(n for op, n in preview.change_summary.items() if op == "create") > 0

        up = stack.up()
        assert up.summary.result == "succeeded"
        outputs = {name: value.value for name, value in up.outputs.items()}
        # Subset, not equality: outputs whose value is null may be left out of the engine's answer.
        assert set(outputs) <= contract_field_names()
        parsed = parse_stack_outputs(outputs, "lab stack")
        assert parsed.standby_mode == "stopped_instances"
        assert parsed.backup_bucket
        assert parsed.backup_replica_bucket
    finally:
        destroy = stack.destroy()
        stack.workspace.remove_stack("lab")
    assert destroy.summary.result == "succeeded"
