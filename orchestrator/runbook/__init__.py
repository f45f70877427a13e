"""Runbooks: typed YAML documents that say, step by step and tier by tier, how to fail over or drill.

The layers, each in its own module, lowest first:

- ``problems``: a mistake at a document path, and at a file position once located.
- ``yamlsource``: YAML text -> plain data plus the line and column of every node (duplicate keys rejected).
- ``interpolate``: the ``${params.x}``, ``${stack.NAME}``, ``${steps.ID.outputs.y}`` and ``${env.VAR}``
  references: parsing, checking and resolving them (``resolve`` is the executor's entry point).
- ``fields`` and ``models``: the frozen pydantic models of a runbook; action parameters come from
  ``orchestrator.actions``. ``pydantic_errors`` rewords pydantic's errors as problems.
- ``params``: declared parameters bound to their defaults and ``-p key=value`` overrides.
- ``references``: which parts of a document may hold references, and the checks that need the graph.
- ``graph``: the recovery order: cycles, tiers, waves of parallel steps and the critical path.
- ``loader``: all of the above in order, every mistake reported as ``FILE:LINE:COLUMN: message``.
- ``plan``: what a run would do, wave by wave, without doing it.

Nothing is imported here on purpose: action modules import ``fields`` and ``interpolate`` while ``models``
imports the actions, and a package ``__init__`` that pulled in ``models`` would make that a cycle.
"""
