"""The mutation check (python -m ft_pipeline_tests.mutants, `make mutants`) stays runnable: every
mutant's text is still in its file exactly once, and the tests it runs still exist. Running the
mutants themselves takes ~15 min; this keeps the list from rotting in between."""
from __future__ import annotations

import re

import pytest

from ft_pipeline_tests.conftest import REPO
from ft_pipeline_tests.mutants import MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_still_applies_to_the_code(mutant):
    assert (REPO / mutant.file).read_text().count(mutant.old) == 1
    for test in mutant.tests:
        path, _, name = test.partition("::")
        assert (REPO / path).is_file()
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", (REPO / path).read_text(), re.M)


def test_mutant_names_are_unique():
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
