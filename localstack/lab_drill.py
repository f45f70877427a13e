"""``make drill``: a whole DR drill on the local lab, in order: seed, drill, report, sweep.

Run inside ``lab.py run`` (which brings the emulators up and, if it started them, down again), with the
project's venv Python. Each stage is a real drctl command, as a person would type it:

1. ``python -m localstack.seed``: the demo estate (idempotent), and its stack outputs file;
2. ``drctl drill runbooks/drill.yaml``: the drill, which cleans up after itself and prints its summary
   (RTO and RPO against the objectives, what failed, what was removed);
3. ``drctl report``: the Markdown report on the terminal, and a self-contained HTML file;
4. ``drctl drill --cleanup --orphans``: a sweep for anything an earlier, crashed drill left in the lab.

The journal lives in ``.lab/state`` so the lab's runs stay out of a person's own drctl history. Exit code:
the drill's (0 when it passed and left nothing behind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNBOOK = "runbooks/drill.yaml"


def _env(lab_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DRCTL_STATE_DIR", str(lab_dir / "state"))
    return env


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def drctl(args: Sequence[str], env: dict[str, str], *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        cwd=REPO,
        env=env,
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )


def _latest_run(env: dict[str, str]) -> str | None:
    listing = drctl(["status", "--json"], env, capture=True)
    if listing.returncode != 0:
        return None
    runs = json.loads(listing.stdout or "[]")
    drills = [r for r in runs if r.get("mode") == "drill" and r.get("runbook") == "drill"]
    return str(drills[0]["run_id"]) if drills else None


def main(argv: Sequence[str]) -> int:
    lab_dir = Path(os.environ.get("DRCTL_LAB_DIR", str(REPO / ".lab"))).resolve()
    env = _env(lab_dir)
    outputs = lab_dir / "stack-outputs.json"
    extra = list(argv)

    stage("seed the lab estate (idempotent)")
    seeded = subprocess.run([sys.executable, "-m", "localstack.seed", "--out", str(outputs)], cwd=REPO, check=False)
    if seeded.returncode != 0:
        print("make drill: seeding the lab failed (see above); nothing was drilled", file=sys.stderr)
        return seeded.returncode

    stage(f"drill {RUNBOOK}")
    before = _latest_run(env)
    drill = drctl(["drill", RUNBOOK, "--stack-outputs", str(outputs), *extra], env)
    run_id = _latest_run(env)
    if run_id is None or run_id == before:
        print("make drill: the drill did not start (see above)", file=sys.stderr)
        return drill.returncode or 1

    stage(f"report of drill {run_id}")
    drctl(["report", run_id, "--format", "markdown"], env)
    reports = lab_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    html = reports / f"drill-{run_id}.html"
    if drctl(["report", run_id, "--format", "html", "--out", str(html)], env).returncode == 0:
        print(f"HTML report: {html}")

    stage("sweep the lab for leftovers of earlier drills")
    sweep = drctl(["drill", "--cleanup", "--orphans", "--min-age", "0s", "--stack-outputs", str(outputs)], env)

    print(f"\nmake drill: drill {run_id} exited {drill.returncode}; journal in {env['DRCTL_STATE_DIR']}")
    print(f"  DRCTL_STATE_DIR={env['DRCTL_STATE_DIR']} drctl report {run_id}  shows it again")
    return drill.returncode or sweep.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
