"""Pulumi entry point: read the stack's config once, build the DR estate, export the outputs contract."""

import sys
from pathlib import Path

# Pulumi runs this file with only `stacks/` on sys.path; the components import as the `stacks` package.
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)

import pulumi  # noqa: E402 -- must follow the sys.path fix above

from stacks.config import load_config  # noqa: E402
from stacks.program import build  # noqa: E402

config = load_config(pulumi.get_stack())
for name, value in build(config).items():
    pulumi.export(name, value)
