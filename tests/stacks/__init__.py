"""Tests of the Pulumi stacks in ``stacks/``, run under Pulumi mocks (no CLI, no cloud)."""
