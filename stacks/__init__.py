"""Pulumi program for the drctl DR estate; ``stacks/__main__.py`` is the entry point Pulumi runs."""
