"""docs/protect.md's command lines and deployment examples, checked as far as a machine without a cluster allows.

The suite never runs the systemd unit, the container or the Kubernetes manifests: the lab has no service manager
to start a unit, no Docker engine and no Kubernetes cluster. What is checked here instead:

- every ``drctl protect`` command line on the page (the shell examples, the unit's ExecStart, the container's
  command, the Deployment's command) parses with drctl's own ``protect`` argument parser, and the synopsis names
  every option that parser has, and no other: a renamed flag breaks this test, not a user's deployment;
- every fenced ``yaml`` block parses with PyYAML, and the Deployment has the shape the page promises (apps/v1,
  one replica, ``Recreate``, ``drctl protect`` as its command, the metrics port the same in ``--metrics-addr``,
  the container port, the scrape annotations, the liveness probe and the PodMonitor);
- the systemd unit parses as an INI file and carries what the page promises (``Restart=always``, an
  ``EnvironmentFile``, the hardening options). Where ``systemd-analyze`` is installed it also passes
  ``systemd-analyze verify`` with nothing to say about it; that verify needs no running systemd.

No schema validation of the manifests: check-jsonschema (0.39, in the venv) vendors schemas for CI systems and
compose files but none for Kubernetes (``--builtin-schema`` lists no ``kubernetes``), and fetching one needs the
network. The Deployment's fields are therefore checked one by one.
"""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.commands.protect import register

DOC = Path(__file__).resolve().parents[2] / "docs" / "protect.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(DOC.read_text()) if kind == lang]


def protect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drctl")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def parse(words: list[str]) -> argparse.Namespace:
    """``words`` (starting with ``protect``) as drctl parses them; a flag it does not know fails the test."""
    try:
        args, extra = protect_parser().parse_known_args(words)
    except SystemExit:
        pytest.fail(f"drctl rejects the documented command: drctl {shlex.join(words)}")
    assert not extra, f"drctl does not know {extra} in: drctl {shlex.join(words)}"
    return args


def protect_words(line: str) -> list[str]:
    """The words from ``protect`` on, in a shell line that runs ``drctl protect`` (after a path or an image)."""
    words = shlex.split(line, comments=True)
    at = next(i for i, w in enumerate(words) if w.endswith("drctl") and words[i + 1 : i + 2] == ["protect"])
    return words[at + 1 :]


def shell_commands() -> list[str]:
    """Every ``drctl protect`` command in the page's shell blocks and, in its transcripts, the lines typed after
    ``$``; continuations joined. The synopsis's ``[--option]`` lines are not commands, nor is the log's
    ``drctl protect: ...``."""
    lines = [line for body in blocks("sh") for line in body.replace("\\\n", " ").splitlines()]
    lines += [line[2:] for body in blocks("text") for line in body.splitlines() if line.startswith("$ ")]
    command = re.compile(r"(^|[\s/])drctl protect(\s|$)")
    return [line.strip() for line in lines if command.search(line) and "[" not in line and not line.startswith("#")]


def metrics_port(args: argparse.Namespace) -> int:
    host, _, port = str(args.metrics_addr).rpartition(":")
    assert host, "--metrics-addr must name its host: 127.0.0.1 outside a container, 0.0.0.0 inside"
    return int(port)


def yaml_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for body in blocks("yaml"):
        docs += [d for d in yaml.safe_load_all(body) if d is not None]
    return docs


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matching = [d for d in docs if d.get("kind") == kind]
    assert len(matching) == 1, f"expected one {kind} in the page's YAML, found {len(matching)}"
    return matching[0]


def systemd_unit() -> str:
    units = [b for b in blocks("ini") if "[Service]" in b]
    assert len(units) == 1
    return units[0]


# -- command lines ----------------------------------------------------------------------------------------------


def test_the_synopsis_names_exactly_the_options_drctl_protect_has() -> None:
    synopsis = next(b for b in blocks("sh") if "drctl protect SOURCE SET" in b)
    documented = {flag for flag in re.findall(r"--[a-z][a-z-]*", synopsis)}
    subparsers = next(a for a in protect_parser()._actions if isinstance(a, argparse._SubParsersAction))
    real = {s for a in subparsers.choices["protect"]._actions for s in a.option_strings if s.startswith("--")}
    assert documented == real - {"--help"}


def test_every_documented_command_line_parses() -> None:
    commands = shell_commands()
    assert len(commands) >= 6  # the examples, the --plan transcript, the container command
    for line in commands:
        args = parse(protect_words(line))
        assert args.command == "protect"


# -- Kubernetes -------------------------------------------------------------------------------------------------


def test_every_yaml_block_parses_and_every_document_has_a_kind() -> None:
    docs = yaml_documents()
    assert docs
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str)
        assert isinstance(doc.get("kind"), str)
        assert doc.get("metadata", {}).get("name")


def test_the_deployment_runs_one_protect_and_never_two() -> None:
    deployment = one(yaml_documents(), "Deployment")
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    # Recreate stops the old pod before the new one starts; a rolling update would overlap them.
    assert spec["strategy"] == {"type": "Recreate"}
    template = spec["template"]
    labels = template["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    pod = template["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30  # SIGTERM, then one SQS receive and a request
    (container,) = pod["containers"]
    command = [str(w) for w in container["command"]]
    assert command[:2] == ["drctl", "protect"]
    parse(command[1:])


def test_the_deployment_metrics_port_is_the_one_protect_serves_and_prometheus_scrapes() -> None:
    docs = yaml_documents()
    pod = one(docs, "Deployment")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    port = metrics_port(parse([str(w) for w in container["command"]][1:]))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": port}
    annotations = pod["metadata"]["annotations"]
    # Annotation and label values must be strings in Kubernetes; YAML would make "true" or 9464 something else.
    for value in [*annotations.values(), *pod["metadata"]["labels"].values()]:
        assert isinstance(value, str)
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/metrics"
    assert probe["port"] in ("metrics", port)
    monitor = one(docs, "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]


def test_the_deployment_keeps_its_state_on_a_volume_and_runs_unprivileged() -> None:
    docs = yaml_documents()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert env["DRCTL_STATE_DIR"] in mounts
    assert {v["name"] for v in pod["volumes"]} == set(mounts.values())
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    account = one(docs, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]


# -- the container ----------------------------------------------------------------------------------------------


def test_the_container_publishes_the_metrics_port_it_serves_on() -> None:
    (line,) = [c for c in shell_commands() if c.startswith("docker run")]
    words = shlex.split(line)
    args = parse(protect_words(line))
    assert args.metrics_addr.startswith("0.0.0.0:")  # inside a container, loopback is unreachable from -p
    published = words[words.index("-p") + 1]
    assert published.rsplit(":", 1)[1] == str(metrics_port(args))
    assert "--restart" in words
    assert "--env-file" in words


# -- systemd ----------------------------------------------------------------------------------------------------


def read_unit(text: str) -> configparser.ConfigParser:
    # systemd repeats some keys (SystemCallFilter=); strict=False keeps the last, which is enough to read it.
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(text)
    return unit


def test_the_systemd_unit_restarts_reads_its_credentials_from_a_file_and_is_hardened() -> None:
    unit = read_unit(systemd_unit())
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"].startswith("/etc/")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    words = shlex.split(service["ExecStart"])
    assert words[0].startswith("/"), "systemd wants an absolute path"
    args = parse(protect_words(service["ExecStart"]))
    assert args.metrics_addr.startswith("127.0.0.1:")
    assert service["Environment"].startswith("DRCTL_STATE_DIR=")
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "RestrictNamespaces": "yes",
    }
    assert {k: service.get(k) for k in hardening} == hardening
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists, so the page's /opt path becomes this venv's drctl.
    drctl = Path(sys.executable).parent / "drctl"
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={drctl}", systemd_unit(), flags=re.MULTILINE)
    path = tmp_path / "drctl-protect-app.service"
    path.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    about_unit = [line for line in (done.stdout + done.stderr).splitlines() if path.name in line]
    assert done.returncode == 0
    assert about_unit == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_unit_is_rated_well_by_systemd_analyze_security(tmp_path: Path) -> None:
    """The hardening options together, as systemd scores them (1.4 "OK" with systemd 252; 10 is unconfined).
    The bound leaves room for other systemd versions weighing the options differently."""
    path = tmp_path / "drctl-protect-app.service"
    path.write_text(systemd_unit())
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in done.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit file offline (systemd < 250)")
    level = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert level is not None, done.stdout[-500:] + done.stderr[-500:]
    assert float(level.group(1)) < 3.0
