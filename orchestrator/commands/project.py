"""``drctl schema runbook`` and ``drctl init``: what a new project starts from.

- ``drctl schema runbook``: the JSON Schema of ``drctl/v1`` runbooks, generated from the models that
  validate them, for editors and CI validators.
- ``drctl init [DIR]``: the example runbooks and the schema, copied into DIR. Each runbook's
  ``yaml-language-server`` modeline is pointed at the copied schema, so an editor completes and checks it
  with no setting. Existing files are never overwritten (``--force`` does).
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.errors import InvalidInput, Permanent

SCHEMA_FILE = "runbook-v1.schema.json"
MODELINE = re.compile(r"^# yaml-language-server: \$schema=\S+$", re.MULTILINE)


def _cmd_schema(args: argparse.Namespace) -> int:
    from orchestrator.runbook.schema import schema_text

    text = schema_text()
    if args.out:
        _write(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def _examples() -> list[tuple[PurePosixPath, str]]:
    """The example runbooks the package carries, by their path under ``runbooks/``."""
    found: list[tuple[PurePosixPath, str]] = []

    def walk(node: Traversable, at: PurePosixPath) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                walk(child, at / child.name)
            elif child.name.endswith(".yaml"):
                found.append((at / child.name, child.read_text(encoding="utf-8")))

    walk(resources.files("orchestrator") / "examples" / "runbooks", PurePosixPath())
    return found


def with_modeline(text: str, schema: str) -> str:
    """``text`` whose modeline names ``schema``; one is added on the first line if it has none."""
    line = f"# yaml-language-server: $schema={schema}"
    if MODELINE.search(text):
        return MODELINE.sub(line.replace("\\", "\\\\"), text, count=1)
    return f"{line}\n{text}"


def _cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"{root} is a file; give a directory for the new project")
    schema = (resources.files("orchestrator") / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    plan: list[tuple[Path, str]] = [(root / "schemas" / SCHEMA_FILE, schema)]
    for relative, text in _examples():
        # The modeline is relative to the runbook, so the project can move (or be cloned) as a whole.
        up = "../" * len(relative.parts)
        plan.append((root / "runbooks" / Path(relative), with_modeline(text, f"{up}schemas/{SCHEMA_FILE}")))
    existing = [p for p, _ in plan if p.exists()]
    if existing and not args.force:
        raise InvalidInput(
            f"{existing[0]} already exists ({len(existing)} file(s) would be overwritten); "
            "use another directory, or --force to overwrite them"
        )
    for path, text in plan:
        _write(path, text)
        print(f"wrote {path}")
    print(f"next: drctl validate {root / 'runbooks' / 'drill.yaml'} --stack-outputs STACK_OUTPUTS.json")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise Permanent(f"cannot write {path}: {err.strerror or err}; check the directory and its permissions") from err


def register(sub: Any) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of drctl/v1 runbooks (for editors and CI)")
    schema.add_argument("document", choices=["runbook"], help="which schema (runbook)")
    schema.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    schema.set_defaults(handler=_cmd_schema)
    init = sub.add_parser("init", help="start a project: the example runbooks and the runbook schema")
    init.add_argument("directory", nargs="?", default=".", help="where (default: here)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(handler=_cmd_init)
