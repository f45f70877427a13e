"""The sharded-backup examples of ``examples/shards/`` (issue #18): a Kubernetes Indexed Job, an AWS Batch array
job and a GitHub Actions matrix, each running ``drctl backup copy --shard I/N`` once per index and sealing after.

Each engine's files are checked twice over, with no cluster, no AWS account and no runner:

- **Schemas.** Kubernetes: every object against the API's own JSON schemas for that release, strictly (unknown
  fields refused), as vendored by kubernetes-validate, for the oldest release the Job needs (1.33, where
  backoffLimitPerIndex is GA) and the newest it knows. AWS Batch: the RegisterJobDefinition and SubmitJob bodies
  against botocore's service model, with botocore's own validator (what the AWS CLI and boto3 check before
  sending). GitHub: check-jsonschema's vendored workflow schema, and actionlint.
- **Wiring.** Each engine's round is played as the engine would play it, and every drctl command line it
  would start is read by drctl's own argument parser: Kubernetes' ``$(VAR)`` expansion over the env the Job
  controller and the downward API give a pod; each Batch child's ``sh -c`` really run with the variables Batch
  sets, and the submit script really run against a stand-in ``aws``; each job of the workflow run by
  ``tests/support/workflow_steps.py`` (matrix values put in first), with stand-ins for ``drctl`` and ``aws``
  that record what they were asked. Then, for every engine: N in the engine's own setting (completions,
  arrayProperties.size, the matrix) is the N of every ``--shard`` and of ``seal --shards``; the shards are
  exactly 0..N-1, indexed by the engine's own variable; all take one ``--shard-group``, the engine's id for the
  run, which the seal uses too; init, copy and seal name the same set; the key each names reaches it; the seal
  starts only after every shard; and no file holds anything that looks like a credential.

Every check is shown to catch a mistake planted in a copy of the files (``test_*_catch_a_planted_mistake``).

Not verified here: a real cluster, Batch queue or runner; the identity webhooks (IRSA, Azure workload
identity), the OIDC trusts and IAM policies; the image (none is published); the behaviour of the actions used.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, latest_version, validate

import tests.integration.test_ci_examples as ci_examples
from orchestrator.cli import _parser_for
from tests.support.estate import REPO
from tests.support.workflow_steps import StandIn, WorkflowError, load_workflow, run_job

EXAMPLES = REPO / "examples" / "shards"
KUBERNETES = "kubernetes-indexed-job.yaml"
BATCH_DEFINITION = "aws-batch-array-job.json"
BATCH_SUBMIT = {
    "init": "aws-batch-submit-init.json",
    "copy": "aws-batch-submit-copy.json",
    "seal": "aws-batch-submit-seal.json",
}
BATCH_SCRIPT = "aws-batch-submit.sh"
WORKFLOW = "github-actions-matrix.yml"
ENGINES = ("kubernetes", "aws-batch", "github-actions")

KUBERNETES_VERSIONS = ("1.33.0", latest_version())
"""The oldest release with every Job field the example uses GA (backoffLimitPerIndex), and the newest known."""
RUN_TIMEOUT_S = 60.0
COMPONENT = "app.kubernetes.io/component"

# The module-scoped probe of test_ci_examples (whether this actionlint predates the `vars` context), used here
# as a fixture of this module too: the same linter, the same tolerance, one definition.
actionlint_predates_vars = ci_examples.actionlint_predates_vars


# --- what every engine's round must satisfy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One drctl process as the engine starts it: its words after ``drctl``, and the environment it gets."""

    words: list[str]
    env: Mapping[str, str]


@dataclass
class Round:
    """One round of a sharded copy as an engine runs it."""

    count: int
    """N, from the engine's own setting: completions, arrayProperties.size, the matrix's length."""
    run_id: str
    """The engine's id for this round, which must be the shard group."""
    copies: dict[int, Call] = field(default_factory=dict)
    """The engine's index of each shard process (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX, matrix.shard)."""
    init: Call | None = None
    seal: Call | None = None
    problems: list[str] = field(default_factory=list)
    """What went wrong while playing the round (an unresolved variable, a command that failed)."""


@functools.cache
def _drctl_parser(command: str | None) -> argparse.ArgumentParser:
    # The very parser `drctl` builds in orchestrator.cli.main, so a renamed or removed option fails here. Built
    # once per command word: each build registers the command's options anew, and argparse keeps no state
    # between parse_args calls.
    return _parser_for(command)


def drctl_parse(words: list[str]) -> argparse.Namespace | str:
    """``words`` as drctl's own parser (the one ``drctl`` runs) reads them, or why it refuses them."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return _drctl_parser(words[0] if words else None).parse_args(words)
    except SystemExit:
        why = (stderr.getvalue().strip().splitlines() or ["(no message)"])[-1]
        return f"drctl refuses `drctl {' '.join(words)}`: {why}"


def _parsed(what: str, call: Call | None, command: str, problems: list[str]) -> argparse.Namespace | None:
    if call is None:
        problems.append(f"no {what} command runs")
        return None
    args = drctl_parse(call.words)
    if isinstance(args, str):
        problems.append(f"{what}: {args}")
        return None
    if (args.command, getattr(args, "backup_command", None)) != ("backup", command):
        problems.append(f"{what} runs `drctl {' '.join(call.words[:2])}`, not `drctl backup {command}`")
        return None
    # The key must reach the process under the name the command gives it (a Secret, a Batch secret, a step).
    if args.key_env and not call.env.get(args.key_env):
        problems.append(f"{what} reads its key from ${args.key_env}, which its environment does not set")
    return args


def round_problems(r: Round) -> list[str]:
    problems = list(r.problems)
    if r.count < 1:
        return [*problems, f"the engine runs {r.count} shards"]
    if sorted(r.copies) != list(range(r.count)):
        problems.append(
            f"the engine's shard indexes are {sorted(r.copies)}, not 0..{r.count - 1} "
            f"(it runs {r.count}, and drctl counts from 0 as the engines do)"
        )
    copies = {i: _parsed(f"shard {i}", call, "copy", problems) for i, call in r.copies.items()}
    init = _parsed("init", r.init, "init", problems)
    seal = _parsed("seal", r.seal, "seal", problems)
    shards = {i: a for i, a in copies.items() if a is not None}
    for i, args in shards.items():
        if args.shard != f"{i}/{r.count}":
            problems.append(f"shard {i} runs --shard {args.shard!r}, not '{i}/{r.count}' ({r.count} shards run)")
    groups = {args.shard_group for args in shards.values()}
    if len(groups) > 1:
        problems.append(f"the shards of one round use different --shard-group values: {sorted(map(str, groups))}")
    for group in groups:
        if group != r.run_id:
            problems.append(f"--shard-group is {group!r}, not the engine's id for the run ({r.run_id!r})")
    for what in ("source", "dest", "mode", "key_env", "key_file"):
        values = {getattr(a, what) for a in shards.values()}
        if len(values) > 1:
            problems.append(f"the shards disagree on {what}: {sorted(map(str, values))}")
    dests = {a.dest for a in shards.values()}
    if seal is not None:
        if seal.shards != r.count:
            problems.append(f"seal --shards {seal.shards}, but the engine runs {r.count} shards")
        if seal.shard_group not in groups:
            problems.append(f"seal --shard-group {seal.shard_group!r} is not the shards' ({sorted(map(str, groups))})")
        if dests and seal.set not in dests:
            problems.append(f"seal names the set {seal.set!r}, the shards {sorted(dests)}")
    if init is not None and dests and init.set not in dests:
        problems.append(f"init makes the set {init.set!r}, the shards copy into {sorted(dests)}")
    return problems


# --- what no example may hold ----------------------------------------------------------------------------------

_SECRETS = {
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a static AWS or Azure credential": re.compile(
        r"aws_secret_access_key|aws-secret-access-key|aws-access-key-id|AZURE_CLIENT_SECRET|client-secret|"
        r"AZURE_STORAGE_KEY|AZURE_STORAGE_CONNECTION_STRING|AZURE_STORAGE_SAS_TOKEN",
        re.IGNORECASE,
    ),
    "an Azure account key": re.compile(r"AccountKey=", re.IGNORECASE),
    "a SAS token": re.compile(r"SharedAccessSignature=|[?&]sig=|[?&]sv=\d{4}-\d\d-\d\d", re.IGNORECASE),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AGE-SECRET-KEY-1"),
    "a GitHub secret": re.compile(r"\bsecrets\."),
    "a 32-byte key in base64": re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}="),
    # An image digest is 64 hex digits too, after its algorithm; a bare run of them may be a key.
    "a 32-byte key in hex": re.compile(r"(?<!sha256:)(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])"),
}


def secret_problems(folder: Path, names: list[str]) -> list[str]:
    return [
        f"{name}:{n}: looks like {what}: {line.strip()[:80]}"
        for name in names
        for n, line in enumerate((folder / name).read_text().splitlines(), 1)
        for what, pattern in _SECRETS.items()
        if pattern.search(line)
    ]


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


# --- the stand-ins the engines' commands run instead of drctl and the AWS CLI ------------------------------------

_DRCTL_STUB = """\
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"tool": "drctl", "argv": sys.argv[1:], "env": dict(os.environ)}) + "\\n")
if sys.argv[1:3] == ["backup", "seal"]:
    print(json.dumps({"recovery_point": "20261204T040000Z-stub", "objects": 3, "objects_transferred": 3}))
"""

_AWS_STUB = """\
import json, os, sys
args = sys.argv[1:]
record = {"tool": "aws", "argv": args}
if args[:2] == ["batch", "submit-job"]:
    body = args[args.index("--cli-input-json") + 1]
    if body.startswith("file://"):
        body = open(body[len("file://"):]).read()
    record["body"] = json.loads(body)
    try:
        with open(os.environ["STUB_LOG"]) as log:
            n = sum(1 for line in log if json.loads(line)["tool"] == "aws")
    except FileNotFoundError:
        n = 0
    record["job_id"] = f"0c0ffee{n}-0000-4000-8000-000000000000"
    print(record["job_id"])
elif args[:2] == ["secretsmanager", "get-secret-value"]:
    print("stub-key-from-secrets-manager")
else:
    sys.exit(f"the aws stand-in does not know {args}")
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
"""


@dataclass(frozen=True)
class Stubs:
    bin: Path
    log: Path

    def records(self, tool: str) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        records = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in records if r["tool"] == tool]

    def calls(self) -> list[Call]:
        return [Call(r["argv"], r["env"]) for r in self.records("drctl")]

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)


def make_stubs(where: Path) -> Stubs:
    where.mkdir(parents=True, exist_ok=True)
    for name, source in (("drctl", _DRCTL_STUB), ("aws", _AWS_STUB)):
        tool = where / name
        # -S: no site packages to import, so each stand-in starts in a few milliseconds.
        tool.write_text(f"#!{sys.executable} -S\n{source}")
        tool.chmod(0o755)
    return Stubs(where, where / "calls.jsonl")


def _path_with(stubs: Stubs) -> str:
    return f"{stubs.bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}"


def _only_call(stubs: Stubs, what: str, problems: list[str]) -> Call | None:
    calls = stubs.calls()
    if len(calls) != 1:
        problems.append(f"{what} started drctl {len(calls)} times, not once")
        return None
    return calls[0]


# --- Kubernetes ----------------------------------------------------------------------------------------------------

_K8S_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


def k8s_expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion of a command word: ``$(VAR)`` from the container's env when defined (left as it is
    otherwise), ``$$`` for a literal ``$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _K8S_VAR.sub(one, text)


def k8s_documents(folder: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((folder / KUBERNETES).read_text()) if d]


def _jobs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        str(d["metadata"].get("labels", {}).get(COMPONENT)): d
        for d in docs
        if d.get("kind") == "Job" and d.get("apiVersion") == "batch/v1"
    }


def k8s_pod_env(
    job: dict[str, Any], container: dict[str, Any], docs: list[dict[str, Any]], index: int | None
) -> tuple[dict[str, str], list[str]]:
    """The env a pod of ``job`` gets: envFrom ConfigMaps, then env (values, the downward API's fields of the pod,
    Secrets), with what the Job controller adds to an Indexed Job's pods (its index, its job-name label)."""
    name = job["metadata"]["name"]
    template = job["spec"]["template"]
    labels = {**template.get("metadata", {}).get("labels", {}), "batch.kubernetes.io/job-name": name}
    annotations = dict(template.get("metadata", {}).get("annotations", {}))
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"}
    env: dict[str, str] = {}
    problems: list[str] = []
    if job["spec"].get("completionMode") == "Indexed" and index is not None:
        labels["batch.kubernetes.io/job-completion-index"] = str(index)
        annotations["batch.kubernetes.io/job-completion-index"] = str(index)
        env["JOB_COMPLETION_INDEX"] = str(index)
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        if ref not in configmaps:
            problems.append(f"job {name} reads the ConfigMap {ref!r}, which the file does not make")
            continue
        env.update({k: str(v) for k, v in configmaps[ref].items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = k8s_expand(str(var["value"]), env)
            continue
        value_from = var.get("valueFrom", {})
        if "secretKeyRef" in value_from:
            env[var["name"]] = f"<Secret {value_from['secretKeyRef']['name']}/{value_from['secretKeyRef']['key']}>"
        elif "fieldRef" in value_from:
            path = value_from["fieldRef"]["fieldPath"]
            match = _FIELD.fullmatch(path)
            if path == "metadata.name":
                env[var["name"]] = f"{name}-{index}-x7k2p"
            elif match is not None:
                found = (labels if match.group(1) == "labels" else annotations).get(match.group(2))
                if found is None:
                    problems.append(f"job {name}: {var['name']} comes from {path}, which its pods do not have")
                env[var["name"]] = found or ""
            else:
                problems.append(f"job {name}: {var['name']} comes from {path}, which this check does not know")
        else:
            problems.append(
                f"job {name}: {var['name']} comes from {sorted(value_from)}, which this check does not know"
            )
    return env, problems


def _k8s_call(job: dict[str, Any], docs: list[dict[str, Any]], index: int | None, problems: list[str]) -> Call | None:
    containers = job["spec"]["template"]["spec"]["containers"]
    container = containers[0]
    env, env_problems = k8s_pod_env(job, container, docs, index)
    problems.extend(env_problems)
    words = [k8s_expand(str(w), env) for w in [*container.get("command", []), *container.get("args", [])]]
    unresolved = [w for w in words if _K8S_VAR.search(w)]
    if unresolved:
        problems.append(f"job {job['metadata']['name']}: nothing defines {unresolved} in its pods' env")
    if not words or words[0] != "drctl":
        problems.append(f"job {job['metadata']['name']} does not run drctl: {words[:3]}")
        return None
    return Call(words[1:], env)


def _k8s_procedure(text: str) -> list[tuple[str, str]]:
    """The documented order of the stages (the header's kubectl lines): ('apply', component) and ('wait', job)."""
    steps: list[tuple[str, str]] = []
    suffix = re.search(r"\br=(\S+)", text)
    for line in text.splitlines():
        line = line.lstrip("# ").split("#")[0]
        if suffix:
            line = line.replace("$r", suffix.group(1))
        apply = re.search(r"kubectl apply .*-l app\.kubernetes\.io/component=(\S+)", line)
        wait = re.search(r"kubectl wait --for=condition=complete job/(\S+)", line)
        if apply:
            steps.append(("apply", apply.group(1)))
        elif wait:
            steps.append(("wait", wait.group(1)))
    return steps


def k8s_round(folder: Path) -> Round:
    docs = k8s_documents(folder)
    jobs = _jobs(docs)
    problems: list[str] = []
    missing = {"init", "copy", "seal"} - set(jobs)
    if missing:
        return Round(0, "", problems=[f"no Job labelled {COMPONENT}={m}" for m in sorted(missing)])
    copy = jobs["copy"]
    completions = copy["spec"].get("completions")
    count = completions if isinstance(completions, int) else 0
    r = Round(count, copy["metadata"]["name"], problems=problems)
    r.copies = {i: c for i in range(count) if (c := _k8s_call(copy, docs, i, problems)) is not None}
    r.init = _k8s_call(jobs["init"], docs, None, problems)
    r.seal = _k8s_call(jobs["seal"], docs, None, problems)
    return r


def k8s_schema_problems(folder: Path) -> list[str]:
    problems = []
    for doc in k8s_documents(folder):
        for version in KUBERNETES_VERSIONS:
            try:
                validate(doc, version, strict=True)
            except ValidationError as err:
                where = ".".join(map(str, err.absolute_path))
                problems.append(f"{doc.get('kind')} {doc['metadata'].get('name')} ({version}): {where}: {err.message}")
            except SchemaNotFoundError as err:
                problems.append(str(err.message))
    return problems


def k8s_wiring_problems(folder: Path) -> list[str]:
    docs = k8s_documents(folder)
    r = k8s_round(folder)
    problems = round_problems(r)
    jobs = _jobs(docs)
    if "copy" in jobs:
        spec = jobs["copy"]["spec"]
        if spec.get("completionMode") != "Indexed":
            problems.append(f"the copy Job's completionMode is {spec.get('completionMode')!r}, not 'Indexed'")
        if not isinstance(spec.get("parallelism"), int) or not 1 <= spec["parallelism"] <= r.count:
            problems.append(f"parallelism {spec.get('parallelism')!r} is not between 1 and completions ({r.count})")
        pod = spec["template"]["spec"]
        if "backoffLimitPerIndex" in spec and pod.get("restartPolicy") != "Never":
            problems.append("backoffLimitPerIndex needs restartPolicy: Never (the API server refuses the Job)")
        container = pod["containers"][0]
        words = [*container.get("command", []), *container.get("args", [])]
        if not any("$(JOB_COMPLETION_INDEX)" in str(w) for w in words):
            problems.append("the copy command does not take its index from $(JOB_COMPLETION_INDEX)")
        if any(v.get("name") == "JOB_COMPLETION_INDEX" for v in container.get("env", [])):
            problems.append("the copy container sets JOB_COMPLETION_INDEX itself, hiding the Job controller's")
    # The seal's stage starts only once the copy Job is complete, i.e. every index succeeded.
    procedure = _k8s_procedure((folder / KUBERNETES).read_text())
    for before, after in (("init", "copy"), ("copy", "seal")):
        if before not in jobs or ("apply", after) not in procedure:
            problems.append(f"the documented procedure never applies the {after} stage")
            continue
        waited = ("wait", jobs[before]["metadata"]["name"])
        if waited not in procedure or procedure.index(waited) > procedure.index(("apply", after)):
            problems.append(f"the documented procedure applies the {after} stage before the {before} Job is complete")
    accounts = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ServiceAccount"}
    for stage, job in jobs.items():
        pod = job["spec"]["template"]["spec"]
        account = accounts.get(pod.get("serviceAccountName", ""))
        if account is None or not account["metadata"].get("annotations"):
            problems.append(f"the {stage} Job's pods run as no annotated ServiceAccount (workload identity)")
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(f"the {stage} Job's pods may run as root")
        for container in pod["containers"]:
            security = container.get("securityContext", {})
            if (
                security.get("readOnlyRootFilesystem") is not True
                or security.get("allowPrivilegeEscalation") is not False
            ):
                problems.append(f"the {stage} Job's container has a writable root or may escalate privileges")
            if not _DIGEST.search(container["image"]):
                problems.append(f"the {stage} Job's image is not pinned by digest: {container['image']}")
            if "memory" not in container.get("resources", {}).get("limits", {}):
                problems.append(f"the {stage} Job's container has no memory limit")
    return problems


# --- AWS Batch -------------------------------------------------------------------------------------------------


def _json(folder: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / name).read_text())
    return loaded


def batch_schema_problems(folder: Path) -> list[str]:
    model = botocore.session.get_session().get_service_model("batch")
    validator = ParamValidator()
    bodies = [(BATCH_DEFINITION, "RegisterJobDefinition")] + [(n, "SubmitJob") for n in BATCH_SUBMIT.values()]
    problems = []
    for name, operation in bodies:
        shape = model.operation_model(operation).input_shape
        assert shape is not None
        report = validator.validate(_json(folder, name), shape)
        if report.has_errors():
            problems.append(f"{name} ({operation}): {report.generate_report()}")
    # Limits the model states in words only.
    retry = _json(folder, BATCH_DEFINITION).get("retryStrategy", {})
    if len(retry.get("evaluateOnExit", [])) > 5:
        problems.append("retryStrategy.evaluateOnExit has more than the 5 conditions Batch accepts")
    size = _json(folder, BATCH_SUBMIT["copy"]).get("arrayProperties", {}).get("size")
    if not isinstance(size, int) or not 2 <= size <= 10_000:
        problems.append(f"arrayProperties.size {size!r} is not an array size Batch accepts (2 to 10,000)")
    return problems


def _batch_run(
    definition: dict[str, Any], body: dict[str, Any], extra: Mapping[str, str], stubs: Stubs
) -> tuple[Call | None, list[str]]:
    """Run a job's command as a Batch container would: the definition's command unless the submission overrides
    it, the definition's environment and secrets with the submission's environment over them, and what Batch
    itself sets (``extra``). Batch expands no variable in a command: only a shell does."""
    container = definition["containerProperties"]
    overrides = body.get("containerOverrides", {})
    command = overrides.get("command") or container.get("command")
    env = {
        "PATH": _path_with(stubs),
        "STUB_LOG": str(stubs.log),
        **{e["name"]: e["value"] for e in container.get("environment", [])},
        **{s["name"]: f"<{s['valueFrom']}>" for s in container.get("secrets", [])},
        **{e["name"]: e["value"] for e in overrides.get("environment", [])},
        **extra,
    }
    stubs.reset()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    problems = (
        [] if done.returncode == 0 else [f"{body.get('jobName')}: {command} exited {done.returncode}: {done.stderr}"]
    )
    return _only_call(stubs, str(body.get("jobName")), problems), problems


def batch_submissions(folder: Path, stubs: Stubs) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Run the submit script against the ``aws`` stand-in: the bodies it submitted, in order, with the ids the
    stand-in answered."""
    stubs.reset()
    done = subprocess.run(
        ["sh", str(folder / BATCH_SCRIPT)],
        env={"PATH": _path_with(stubs), "STUB_LOG": str(stubs.log)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    problems = [] if done.returncode == 0 else [f"{BATCH_SCRIPT} exited {done.returncode}: {done.stderr}"]
    submitted = [r for r in stubs.records("aws") if r["argv"][:2] == ["batch", "submit-job"]]
    return [(r["job_id"], r["body"]) for r in submitted], problems


def batch_round(folder: Path, stubs: Stubs) -> tuple[Round, list[str]]:
    definition = _json(folder, BATCH_DEFINITION)
    submissions, problems = batch_submissions(folder, stubs)
    if len(submissions) != 3:
        return Round(0, "", problems=[*problems, f"{BATCH_SCRIPT} submitted {len(submissions)} jobs, not 3"]), []
    (init_id, init), (copy_id, copy), (seal_id, seal) = submissions
    size = copy.get("arrayProperties", {}).get("size")
    count = size if isinstance(size, int) else 0
    r = Round(count, copy_id, problems=problems)
    for i in range(count):
        # What Batch sets in a child of an array job: its index, and its id, "<array job id>:<index>".
        extra = {
            "AWS_BATCH_JOB_ARRAY_INDEX": str(i),
            "AWS_BATCH_JOB_ID": f"{copy_id}:{i}",
            "AWS_BATCH_JOB_ATTEMPT": "1",
        }
        call, run_problems = _batch_run(definition, copy, extra, stubs)
        problems.extend(run_problems)
        if call is not None:
            r.copies[i] = call
    r.init, init_problems = _batch_run(definition, init, {"AWS_BATCH_JOB_ID": init_id}, stubs)
    r.seal, seal_problems = _batch_run(definition, seal, {"AWS_BATCH_JOB_ID": seal_id}, stubs)
    problems.extend(init_problems + seal_problems)
    # The order: copy after init, and the seal after the whole array job (a plain dependency on an array job
    # waits for every child; N_TO_N or SEQUENTIAL would pair it with one child, or mean nothing for a single job).
    ordering = []
    if init.get("dependsOn"):
        ordering.append(f"init depends on {init['dependsOn']}")
    if copy.get("dependsOn") != [{"jobId": init_id}]:
        ordering.append(f"the array job depends on {copy.get('dependsOn')}, not on init ({init_id}) alone")
    if seal.get("dependsOn") != [{"jobId": copy_id}]:
        ordering.append(f"the seal depends on {seal.get('dependsOn')}, not on the whole array job ({copy_id}) alone")
    return r, ordering


def batch_wiring_problems(folder: Path, stubs: Stubs) -> list[str]:
    r, ordering = batch_round(folder, stubs)
    problems = round_problems(r) + ordering
    definition = _json(folder, BATCH_DEFINITION)
    container = definition.get("containerProperties", {})
    command = container.get("command") or []
    if not any("$AWS_BATCH_JOB_ARRAY_INDEX" in str(w) for w in command):
        problems.append("the shards' command does not take its index from $AWS_BATCH_JOB_ARRAY_INDEX")
    if not str(container.get("jobRoleArn", "")).startswith("arn:aws:iam::"):
        problems.append("the job definition has no jobRoleArn: its containers would need keys")
    if container.get("readonlyRootFilesystem") is not True or container.get("privileged"):
        problems.append("the container's root file system is writable, or it is privileged")
    if str(container.get("user", "root")).split(":")[0] in ("root", "0"):
        problems.append(f"the container runs as root (user {container.get('user')!r})")
    if not _DIGEST.search(str(container.get("image", ""))):
        problems.append(f"the image is not pinned by digest: {container.get('image')}")
    return problems


# --- GitHub Actions ----------------------------------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
_PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
_VARIABLES = {
    "DRCTL_AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/drctl-backup-gha",
    "AWS_REGION": "eu-west-1",
    "DRCTL_BACKUP_SOURCE": "s3://prod-data/db/",
    "DRCTL_BACKUP_SET": "s3://dr-vault/db-set/",
    "DRCTL_BACKUP_KEY_SECRET_ID": "drctl/db-set-key",
}


def _stand_ins(stubs: Stubs) -> dict[str, StandIn]:
    return {
        "python": StandIn("this machine's Python runs the stand-ins"),
        "install": StandIn(
            "nothing is downloaded here: stand-ins for drctl and the AWS CLI go on PATH, through GITHUB_PATH",
            run=f"echo '{stubs.bin}' >> \"$GITHUB_PATH\"\n",
        ),
        "aws": StandIn("no AWS here: the AWS CLI's stand-in answers the steps' calls"),
    }


def _run_gha_job(text: str, job_id: str, where: Path, stubs: Stubs, problems: list[str]) -> list[Call]:
    stubs.reset()
    where.mkdir(parents=True)
    (where / "workflow.yml").write_text(text)
    try:
        run = run_job(
            load_workflow(where / "workflow.yml"),
            job_id,
            workspace=where,
            runner_temp=where,
            machine_env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(where), "STUB_LOG": str(stubs.log)},
            event_name="schedule",
            inputs={},
            variables=_VARIABLES,
            stand_ins=_stand_ins(stubs),
            step_timeout_s=RUN_TIMEOUT_S,
        )
    except WorkflowError as err:
        problems.append(f"job {job_id}: {err}")
        return []
    if not run.succeeded:
        problems.append(f"job {job_id} failed:\n{run.log()}")
    return stubs.calls()


def gha_round(folder: Path, stubs: Stubs, where: Path) -> Round:
    text = (folder / WORKFLOW).read_text()
    workflow = load_workflow(folder / WORKFLOW)
    problems: list[str] = []
    matrix = workflow["jobs"]["copy"].get("strategy", {}).get("matrix", {}).get("shard", [])
    r = Round(len(matrix), "1000001", problems=problems)  # run_job's github.run_id
    for value in matrix:
        # GitHub expands the matrix into one job per value before any of them runs; run_job knows no matrix.
        calls = _run_gha_job(
            text.replace("${{ matrix.shard }}", str(value)), "copy", where / f"copy-{value}", stubs, problems
        )
        if not isinstance(value, int) or len(calls) != 1:
            problems.append(f"matrix value {value!r} started drctl {len(calls)} times (a shard index runs it once)")
        elif value in r.copies:
            problems.append(f"matrix value {value} appears twice")
        else:
            r.copies[value] = calls[0]
    for job_id in ("init", "seal"):
        calls = _run_gha_job(text, job_id, where / job_id, stubs, problems)
        if len(calls) != 1:
            problems.append(f"job {job_id} started drctl {len(calls)} times, not once")
        else:
            setattr(r, job_id, calls[0])
    return r


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def gha_wiring_problems(folder: Path, stubs: Stubs, where: Path) -> list[str]:
    problems = round_problems(gha_round(folder, stubs, where))
    workflow = load_workflow(folder / WORKFLOW)
    jobs = workflow["jobs"]
    if "init" not in _needs(jobs["copy"]):
        problems.append("the copy jobs do not wait for init (needs: init)")
    if "copy" not in _needs(jobs["seal"]):
        problems.append("the seal does not wait for every shard (needs: copy)")
    if re.search(r"always\(\)|failure\(\)|cancelled\(\)", str(jobs["seal"].get("if", ""))):
        problems.append(f"the seal runs even when a shard failed (if: {jobs['seal']['if']})")
    if jobs["copy"].get("strategy", {}).get("fail-fast") is not False:
        problems.append("one failed shard cancels the others (strategy.fail-fast is not false)")
    copy_env = {**workflow.get("env", {}), **jobs["copy"].get("env", {})}
    for step in jobs["copy"]["steps"]:
        copy_env.update(step.get("env", {}))
        if "drctl backup copy" in step.get("run", "") and "${{ matrix.shard }}" not in copy_env.values():
            problems.append("the copy step does not take its index from ${{ matrix.shard }}")
    if workflow.get("permissions") != {"contents": "read", "id-token": "write"}:
        problems.append(f"permissions are {workflow.get('permissions')}, not contents: read and id-token: write")
    for job_id, job in jobs.items():
        for step in job["steps"]:
            if _EXPR.search(step.get("run", "")):
                problems.append(f"job {job_id}, step {step.get('id')}: an expression in its script (use env:)")
            if "uses" in step and not _PINNED.fullmatch(step["uses"]):
                problems.append(f"job {job_id}, step {step.get('id')}: {step['uses']} is not pinned to a commit")
    return problems


def gha_schema_problems(folder: Path, predates_vars: bool) -> list[str]:
    path = folder / WORKFLOW
    done = ci_examples.check_jsonschema("vendor.github-workflows", path)
    problems = [] if done.returncode == 0 else [f"check-jsonschema: {done.stdout}{done.stderr}"]
    findings = ci_examples.real_findings(ci_examples.actionlint(path), path, predates_vars)
    return problems + [f"actionlint: {f['line']}:{f['column']}: {f['message']}" for f in findings]


# --- the checks over the repository's files -----------------------------------------------------------------------


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    return make_stubs(tmp_path / "stubs")


def wiring_problems(engine: str, folder: Path, stubs: Stubs, where: Path) -> list[str]:
    if engine == "kubernetes":
        return k8s_wiring_problems(folder)
    if engine == "aws-batch":
        return batch_wiring_problems(folder, stubs)
    return gha_wiring_problems(folder, stubs, where)


ENGINE_FILES = {
    "kubernetes": [KUBERNETES],
    "aws-batch": [BATCH_DEFINITION, *BATCH_SUBMIT.values(), BATCH_SCRIPT],
    "github-actions": [WORKFLOW],
}


def test_every_file_of_the_folder_is_an_engines() -> None:
    """A new example in examples/shards/ gets checked here too, or this fails."""
    checked = {name for names in ENGINE_FILES.values() for name in names}
    assert {p.name for p in EXAMPLES.iterdir()} == checked


def test_the_kubernetes_objects_pass_the_api_schemas_strictly() -> None:
    assert k8s_schema_problems(EXAMPLES) == []


def test_the_batch_request_bodies_pass_botocores_model() -> None:
    assert batch_schema_problems(EXAMPLES) == []


def test_the_workflow_passes_its_schema_and_actionlint(actionlint_predates_vars: bool) -> None:
    assert gha_schema_problems(EXAMPLES, actionlint_predates_vars) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_runs_n_shards_of_one_group_and_seals_them_after(engine: str, stubs: Stubs, tmp_path: Path) -> None:
    assert wiring_problems(engine, EXAMPLES, stubs, tmp_path / "run") == []


@pytest.mark.parametrize("engine", ENGINES)
def test_no_example_holds_a_credential(engine: str) -> None:
    assert secret_problems(EXAMPLES, ENGINE_FILES[engine]) == []


def test_the_engines_indexes_become_drctls_shards(stubs: Stubs, tmp_path: Path) -> None:
    """What the wiring checks compare, spelled out once per engine: shard i of N gets ``--shard i/N``."""
    k8s = k8s_round(EXAMPLES)
    batch, _ = batch_round(EXAMPLES, stubs)
    gha = gha_round(EXAMPLES, stubs, tmp_path)
    for r, count in ((k8s, 8), (batch, 8), (gha, 4)):
        assert r.count == count
        for i, call in r.copies.items():
            args = drctl_parse(call.words)
            assert isinstance(args, argparse.Namespace), args
            assert (args.shard, args.shard_group) == (f"{i}/{count}", r.run_id)
    assert k8s.run_id == "drctl-db-copy-20261204t0400"


# --- each check catches a planted mistake ----------------------------------------------------------------------


def plant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of examples/shards/ with ``old`` replaced by ``new`` in ``name``."""
    folder = tmp_path / "shards"
    shutil.copytree(EXAMPLES, folder)
    ci_examples.plant(EXAMPLES / name, folder / name, old, new)
    return folder


def mistake(case: str, engine: str, name: str, old: str, new: str, named: str) -> Any:
    """A mistake to plant: ``old`` becomes ``new`` in the engine's file ``name``, and a problem naming ``named``
    must be reported."""
    return pytest.param(engine, name, old, new, named, id=f"{engine}-{case}")


_K8S, _BATCH, _GHA = ENGINES
_IDX = "$(JOB_COMPLETION_INDEX)"
_COPY_SUBMIT, _SEAL_SUBMIT = BATCH_SUBMIT["copy"], BATCH_SUBMIT["seal"]
_BATCH_SHELL_COMMAND = '"sh",\n      "-c",\n      ' + json.dumps(
    json.loads((EXAMPLES / BATCH_DEFINITION).read_text())["containerProperties"]["command"][2]
)
"""The shards' command as the job definition spells it: a shell, which expands Batch's variables."""
_BATCH_BARE_COMMAND = ", ".join(
    json.dumps(word)
    for word in (
        *("drctl", "backup", "copy", "s3://prod-data/db/", "s3://dr-vault/db-set/", "--mode", "full"),
        *(
            "--shard",
            "$AWS_BATCH_JOB_ARRAY_INDEX/8",
            "--shard-group",
            "$AWS_BATCH_JOB_ID",
            "--key-env",
            "DRCTL_BACKUP_KEY",
        ),
    )
)
"""The same without a shell: Batch passes each word as it is."""
_K8S_COPY_KEY = "- --key-env\n            - DRCTL_BACKUP_KEY\n            - --json\n            - --quiet"
_AWS_ACTION = "@e6de054238d6b7531b4efff3b6587d9aade6a06c # v6.2.3"

WIRING_MISTAKES = [
    # N in the engine against N in --shard and in seal --shards.
    mistake("completions-3", _K8S, KUBERNETES, "completions: 8", "completions: 3", "--shard '0/8', not '0/3'"),
    mistake("shard-of-4", _K8S, KUBERNETES, f"{_IDX}/8", f"{_IDX}/4", "--shard '0/4', not '0/8'"),
    mistake("seal-4", _K8S, KUBERNETES, '- "8"', '- "4"', "seal --shards 4, but the engine runs 8"),
    # The index from the engine's own variable, and the Job that sets it.
    mistake("own-index-var", _K8S, KUBERNETES, f"{_IDX}/8", "$(SHARD_INDEX)/8", "nothing defines ['$(SHARD_INDEX)/8']"),
    mistake("non-indexed", _K8S, KUBERNETES, "completionMode: Indexed", "completionMode: NonIndexed", "not 'Indexed'"),
    mistake("parallelism-9", _K8S, KUBERNETES, "parallelism: 8", "parallelism: 9", "parallelism 9 is not between"),
    # One group per run, and the seal's is the same.
    mistake(
        "seal-other-round",
        _K8S,
        KUBERNETES,
        "value: drctl-db-copy-20261204t0400",
        "value: drctl-db-copy-20261203t0400",
        "seal --shard-group 'drctl-db-copy-20261203t0400' is not the shards'",
    ),
    mistake(
        "no-such-label",
        _K8S,
        KUBERNETES,
        "metadata.labels['batch.kubernetes.io/job-name']",
        "metadata.labels['job-name-typo']",
        "which its pods do not have",
    ),
    # The seal after every shard: the procedure waits for the copy Job, not just for init.
    mistake(
        "seal-before-copy",
        _K8S,
        KUBERNETES,
        "--for=condition=complete job/drctl-db-copy-$r",
        "--for=condition=complete job/drctl-db-init-$r",
        "applies the seal stage before the copy Job is complete",
    ),
    mistake(
        "key-env", _K8S, KUBERNETES, _K8S_COPY_KEY, _K8S_COPY_KEY.replace("DRCTL_BACKUP_KEY", "DRCTL_KEY"), "$DRCTL_KEY"
    ),
    mistake("unknown-option", _K8S, KUBERNETES, "- --quiet", "- --silent", "drctl refuses"),
    mistake(
        "writable-root",
        _K8S,
        KUBERNETES,
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "writable root",
    ),
    mistake("root", _K8S, KUBERNETES, "runAsNonRoot: true", "runAsNonRoot: false", "may run as root"),
    mistake("tag-only", _K8S, KUBERNETES, "drctl:0.1.0@sha256:" + "0" * 64, "drctl:0.1.0", "not pinned by digest"),
    mistake("size-3", _BATCH, _COPY_SUBMIT, '"size": 8', '"size": 3', "--shard '0/8', not '0/3'"),
    mistake("shard-of-4", _BATCH, BATCH_DEFINITION, "JOB_ARRAY_INDEX/8", "JOB_ARRAY_INDEX/4", "'0/4', not '0/8'"),
    mistake("seal-4", _BATCH, _SEAL_SUBMIT, "--shards 8", "--shards 4", "seal --shards 4, but the engine runs 8"),
    # Kubernetes' variable in a Batch job: unset, and `set -u` stops the shell before drctl starts.
    mistake(
        "kubernetes-index-var",
        _BATCH,
        BATCH_DEFINITION,
        "$AWS_BATCH_JOB_ARRAY_INDEX/8",
        "$JOB_COMPLETION_INDEX/8",
        "exited 2",
    ),
    # Without a shell nothing expands the variable: drctl would get it as it is written.
    mistake(
        "no-shell",
        _BATCH,
        BATCH_DEFINITION,
        _BATCH_SHELL_COMMAND,
        _BATCH_BARE_COMMAND,
        "--shard '$AWS_BATCH_JOB_ARRAY_INDEX/8', not '0/8'",
    ),
    # A child's id is "<array job id>:<index>": unstripped, each shard would be a group of its own.
    mistake(
        "child-id-as-group",
        _BATCH,
        BATCH_DEFINITION,
        "${AWS_BATCH_JOB_ID%%:*}",
        "$AWS_BATCH_JOB_ID",
        "use different --shard-group values",
    ),
    mistake(
        "seal-after-init",
        _BATCH,
        _SEAL_SUBMIT,
        '"dependsOn": [{"jobId": "COPY_JOB_ID"}]',
        '"dependsOn": [{"jobId": "INIT_JOB_ID"}]',
        "the seal depends on [{'jobId': 'INIT_JOB_ID'}]",
    ),
    mistake(
        "seal-n-to-n",
        _BATCH,
        _SEAL_SUBMIT,
        '"dependsOn": [{"jobId": "COPY_JOB_ID"}]',
        '"dependsOn": [{"jobId": "COPY_JOB_ID", "type": "N_TO_N"}]',
        "not on the whole array job",
    ),
    mistake(
        "script-groups",
        _BATCH,
        BATCH_SCRIPT,
        'sed "s/COPY_JOB_ID/$copy_id/g"',
        'sed "s/COPY_JOB_ID/$init_id/g"',
        "is not the shards'",
    ),
    mistake("no-job-role", _BATCH, BATCH_DEFINITION, '"jobRoleArn"', '"jobRoleName"', "no jobRoleArn"),
    mistake("root", _BATCH, BATCH_DEFINITION, '"user": "10001:10001"', '"user": "root"', "runs as root"),
    mistake("key-env", _BATCH, BATCH_DEFINITION, '"name": "DRCTL_BACKUP_KEY"', '"name": "DRCTL_KEY"', "reads its key"),
    mistake("matrix-3", _GHA, WORKFLOW, "shard: [0, 1, 2, 3]", "shard: [0, 1, 2]", "--shard '0/4', not '0/3'"),
    mistake("matrix-from-1", _GHA, WORKFLOW, "shard: [0, 1, 2, 3]", "shard: [1, 2, 3, 4]", "indexes are [1, 2, 3, 4]"),
    mistake("shard-of-8", _GHA, WORKFLOW, '--shard "$SHARD/4"', '--shard "$SHARD/8"', "--shard '0/8', not '0/4'"),
    mistake("seal-3", _GHA, WORKFLOW, "--shards 4", "--shards 3", "seal --shards 3, but the engine runs 4"),
    mistake("no-matrix-index", _GHA, WORKFLOW, "SHARD: ${{ matrix.shard }}", "SHARD: 0", "take its index from"),
    # "Re-run failed jobs" is a new attempt: with the attempt in the group, the re-run shard and the seal would
    # not find the manifests of the shards that had succeeded in the first one.
    mistake(
        "group-with-attempt",
        _GHA,
        WORKFLOW,
        "SHARD_GROUP: ${{ github.run_id }}",
        "SHARD_GROUP: ${{ github.run_id }}-${{ github.run_attempt }}",
        "--shard-group is '1000001-1', not the engine's id for the run ('1000001')",
    ),
    mistake(
        "expression-in-script", _GHA, WORKFLOW, '--shard "$SHARD/4"', '--shard "${{ matrix.shard }}/4"', "expression"
    ),
    mistake("seal-needs-init", _GHA, WORKFLOW, "    needs: copy\n", "    needs: init\n", "wait for every shard"),
    mistake(
        "seal-always",
        _GHA,
        WORKFLOW,
        "  seal:\n    needs: copy\n",
        "  seal:\n    needs: copy\n    if: always()\n",
        "the seal runs even when a shard failed",
    ),
    mistake("fail-fast", _GHA, WORKFLOW, "fail-fast: false", "fail-fast: true", "cancels the others"),
    mistake("tag-not-commit", _GHA, WORKFLOW, _AWS_ACTION, "@v6", "is not pinned to a commit"),
    mistake("no-id-token", _GHA, WORKFLOW, "id-token: write", "id-token: read", "id-token: write"),
    mistake(
        "key-env",
        _GHA,
        WORKFLOW,
        "--key-env DRCTL_BACKUP_KEY --json \\\n",
        "--key-env DRCTL_KEY --json \\\n",
        "reads its key from $DRCTL_KEY",
    ),
]


@pytest.mark.parametrize(("engine", "name", "old", "new", "named"), WIRING_MISTAKES)
def test_the_wiring_checks_catch_a_planted_mistake(
    engine: str, name: str, old: str, new: str, named: str, stubs: Stubs, tmp_path: Path
) -> None:
    problems = wiring_problems(engine, plant(tmp_path, name, old, new), stubs, tmp_path / "run")
    assert any(named in p for p in problems), "\n".join(problems)


SCHEMA_MISTAKES = [
    mistake(
        "misspelt-field",
        _K8S,
        KUBERNETES,
        "backoffLimitPerIndex: 2",
        "backoffLimitPerIndx: 2",
        "'backoffLimitPerIndx' was unexpected",
    ),
    mistake("string-count", _K8S, KUBERNETES, "completions: 8", 'completions: "8"', "'8' is not of type 'integer'"),
    mistake("field-case", _K8S, KUBERNETES, "fieldPath: metadata.labels", "fieldpath: metadata.labels", "'fieldPath'"),
    mistake(
        "field-case",
        _BATCH,
        BATCH_DEFINITION,
        '"readonlyRootFilesystem"',
        '"readOnlyRootFilesystem"',
        "Unknown parameter",
    ),
    mistake(
        "string-size", _BATCH, _COPY_SUBMIT, '"size": 8', '"size": "8"', "Invalid type for parameter arrayProperties"
    ),
    mistake(
        "no-queue", _BATCH, _SEAL_SUBMIT, '"jobQueue"', '"queue"', 'Missing required parameter in input: "jobQueue"'
    ),
    mistake("runs-on", _GHA, WORKFLOW, "    runs-on: ", "    runs_on: ", "'runs_on' was unexpected"),
    mistake("unknown-needs", _GHA, WORKFLOW, "needs: copy", "needs: copyy", 'needs job "copyy" which does not exist'),
]


@pytest.mark.parametrize(("engine", "name", "old", "new", "named"), SCHEMA_MISTAKES)
def test_the_schema_checks_catch_a_planted_mistake(
    engine: str, name: str, old: str, new: str, named: str, tmp_path: Path, actionlint_predates_vars: bool
) -> None:
    folder = plant(tmp_path, name, old, new)
    check: Callable[[], list[str]] = {
        _K8S: lambda: k8s_schema_problems(folder),
        _BATCH: lambda: batch_schema_problems(folder),
        _GHA: lambda: gha_schema_problems(folder, actionlint_predates_vars),
    }[engine]
    problems = check()
    assert any(named in p for p in problems), "\n".join(problems)


SECRET_MISTAKES = [
    mistake(
        "access-key-id",
        _K8S,
        KUBERNETES,
        "eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/drctl-backup-shards",
        "eks.amazonaws.com/role-arn: AKIAIOSFODNN7EXAMPLE",
        "an AWS access key id",
    ),
    mistake(
        "account-key",
        _K8S,
        KUBERNETES,
        "  AWS_REGION: eu-west-1\n",
        "  AWS_REGION: eu-west-1\n  STORAGE: DefaultEndpointsProtocol=https;AccountName=v;AccountKey=eA==\n",
        "an Azure account key",
    ),
    mistake(
        "sas",
        _BATCH,
        BATCH_DEFINITION,
        '"value": "s3://dr-vault/db-set/"',
        '"value": "https://vault.blob.core.windows.net/db?sv=2024-08-04&sp=rw&sig=AbC%2Fd"',
        "a SAS token",
    ),
    mistake(
        "set-key",
        _BATCH,
        BATCH_DEFINITION,
        '{"name": "HOME", "value": "/tmp"}',
        '{"name": "KEY", "value": "q0J0YJmTdN1wGm3mI3fSg2bYcWJ0Fj5cO3YdPa4mN8s="}',
        "a 32-byte key in base64",
    ),
    mistake(
        "static-keys",
        _GHA,
        WORKFLOW,
        "          aws-region: ${{ vars.AWS_REGION }}\n",
        "          aws-region: ${{ vars.AWS_REGION }}\n"
        "          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n",
        "a static AWS or Azure credential",
    ),
]


@pytest.mark.parametrize(("engine", "name", "old", "new", "named"), SECRET_MISTAKES)
def test_the_credential_check_catches_a_planted_secret(
    engine: str, name: str, old: str, new: str, named: str, tmp_path: Path
) -> None:
    problems = secret_problems(plant(tmp_path, name, old, new), ENGINE_FILES[engine])
    assert any(named in p for p in problems), "\n".join(problems)


def _all_calls(folder: Path, stubs: Stubs, where: Path) -> Iterator[Call]:
    for r in (k8s_round(folder), batch_round(folder, stubs)[0], gha_round(folder, stubs, where)):
        yield from r.copies.values()
        yield from (c for c in (r.init, r.seal) if c is not None)


def test_every_drctl_command_of_the_examples_parses_with_drctls_parser(stubs: Stubs, tmp_path: Path) -> None:
    """Every command line, as its engine runs it, through the parser ``drctl`` itself builds
    (``orchestrator.cli``): a renamed option fails here, not in a user's cluster."""
    parsed = [drctl_parse(call.words) for call in _all_calls(EXAMPLES, stubs, tmp_path)]
    assert [p for p in parsed if isinstance(p, str)] == []
    commands = [(a.command, a.backup_command) for a in parsed if isinstance(a, argparse.Namespace)]
    # 8 + 8 + 4 shards, and an init and a seal per engine.
    assert sorted(commands) == sorted([("backup", "copy")] * 20 + [("backup", "init"), ("backup", "seal")] * 3)
