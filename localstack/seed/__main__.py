"""The command line: ``python -m localstack.seed --out PATH [--name-prefix P]``, failures as one line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from azure.core.exceptions import AzureError
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from localstack.seed.clients import connect, lab_environment, preflight
from localstack.seed.config import DEFAULT_PREFIX, load_lab_config, require_aws
from localstack.seed.errors import LAB_UP_HINT, SeedError
from localstack.seed.estate import SeedReport, seed
from localstack.seed.outputs import build_outputs, validated, write_outputs
from orchestrator.errors import DrError, ExitCode
from orchestrator.stack_outputs import StackOutputs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.seed", description="Seed the local lab with a demo DR estate."
    )
    parser.add_argument("--out", required=True, type=Path, help="where to write the stack-outputs JSON")
    parser.add_argument(
        "--name-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of every resource name (default {DEFAULT_PREFIX}); give tests their own",
    )
    return parser.parse_args(argv)


def summary(report: SeedReport, outputs: StackOutputs, out: Path, seconds: float) -> str:
    standby = ", ".join(f"{t} {len(ids)}" for t, ids in outputs.standby_instance_ids.items())
    return "\n".join(
        [
            f"seed: lab estate {report.prefix!r} ready in {seconds:.1f}s",
            f"  app data   {report.source_url}",
            f"  backups    {report.set_url} ({len(report.recovery_points)} recovery points), "
            f"replica s3://{outputs.backup_replica_bucket} in {outputs.backup_replica_region}",
            f"  vault      az://{report.vault}/ on Azurite (cross-cloud copy target)",
            f"  recovery   {outputs.recovery_network_id} in {outputs.recovery_region}: "
            f"{len(outputs.recovery_subnet_ids)} private + {len(outputs.recovery_public_subnet_ids)} public subnets; "
            f"standby stopped: {standby}",
            f"  drill      {outputs.drill_network_id}: {len(outputs.drill_subnet_ids)} subnets, no internet gateway",
            f"  dns        {outputs.production_record_name} (zone {outputs.dns_zone_id}, health check "
            f"{outputs.health_check_id}); drill {outputs.drill_record_name} (zone {outputs.drill_dns_zone_id})",
            f"  outputs    {out}",
        ]
    )


def run(out: Path, name_prefix: str, environ: Mapping[str, str]) -> int:
    started = time.monotonic()
    config = load_lab_config(name_prefix)
    env = lab_environment(environ)
    clients = connect(env, require_aws(config))
    account = preflight(clients, env)
    runner_on = environ.get("DRCTL_LAB_RUNNER", "on").lower() not in ("off", "0", "false")
    if not runner_on:
        print("seed: the instance runner is off: production runs nothing and dumps no database", file=sys.stderr)
    report = seed(clients, config, account, runner_on)
    outputs = validated(build_outputs(config, report.estate))
    write_outputs(out, outputs)
    print(summary(report, outputs, out, time.monotonic() - started), file=sys.stderr)
    return ExitCode.OK


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args.out, args.name_prefix, os.environ)
    except SeedError as err:
        code, message = err.code, one_line(err)
    except DrError as err:
        code, message = err.exit_code, one_line(err)
    except BotoConnectionError as err:
        code, message = ExitCode.UNREACHABLE, f"lost the lab mid-seed ({one_line(err)}); {LAB_UP_HINT}"
    except (ClientError, BotoCoreError, AzureError) as err:
        code, message = ExitCode.FAILED, f"{one_line(err)}; fix it and run the seeder again (it resumes)"
    except OSError as err:
        code, message = ExitCode.FAILED, one_line(err)
    except KeyboardInterrupt:
        code, message = ExitCode.INTERRUPTED, "interrupted; run the seeder again to finish (it resumes)"
    print(f"seed: error: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
