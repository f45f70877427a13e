"""The mutation check's mutants still apply to the current source (without running them: that takes minutes).

A refactor of ``stacks/`` can move or reword the text a mutant replaces; the mutant would then test nothing.
This fails fast instead, naming the mutant to update in ``tests/stacks/mutants.py``.
"""

from __future__ import annotations

import pytest

from tests.stacks.mutants import MUTANTS, ROOT, Mutant, mutate, occurrences


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_old_text_occurs_exactly_once(mutant: Mutant) -> None:
    count = occurrences(mutant)
    assert count == 1, (
        f"{mutant.name}: its old text occurs {count} times in {mutant.file}; "
        "update the mutant in tests/stacks/mutants.py to the code's new shape"
    )


def test_mutants_are_distinct_real_edits_of_the_stacks() -> None:
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names), "mutant names must be unique: they select mutants on the command line"
    edits = [(m.file, m.old, m.new) for m in MUTANTS]
    assert len(set(edits)) == len(edits), "two mutants make the same edit"
    for m in MUTANTS:
        assert m.file.startswith("stacks/"), m.name
        assert m.old != m.new, m.name
        source = (ROOT / m.file).read_text(encoding="utf-8")
        # The mutated module must still be Python: a syntax error would be "killed" without testing anything.
        compile(mutate(m, source), m.file, "exec")
