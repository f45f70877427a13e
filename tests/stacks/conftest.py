"""Fixtures for the Pulumi stack tests: a fresh, mock-backed Pulumi runtime for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stacks.pulumi_harness import reset_runtime


@pytest.fixture(autouse=True)
def fresh_pulumi_runtime() -> Iterator[None]:
    """Pulumi's mocks, config and root stack are process-global; start and end every test clean."""
    reset_runtime()
    yield
    reset_runtime()
