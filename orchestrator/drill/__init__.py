"""Drills: a runbook run in isolation (``drctl drill``), everything it makes tagged and cleaned up after it."""
