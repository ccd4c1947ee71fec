"""defs/failures.py: a user's mistake stops an asset as a one-line dg.Failure carrying the error's
own message, with no traceback chained to it; anything else still crashes, as a bug should."""
from __future__ import annotations

import dagster as dg
import pytest

from ft_pipeline.core.task import TaskError
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.errors import UserError


def test_a_user_error_becomes_a_one_line_failure_without_its_traceback():
    with pytest.raises(dg.Failure) as caught:
        with user_failure():
            raise TaskError("configs/tasks/t.yaml", "metric", "must be one of accuracy, f1", line=7)
    assert caught.value.description == "configs/tasks/t.yaml line 7: field metric: must be one of accuracy, f1"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_only_its_first_line_and_only_named_types_besides_user_errors():
    with pytest.raises(dg.Failure) as caught:
        with user_failure(ValueError, shown=str.upper):
            raise ValueError("preset.yaml: field method: dpo\n  a second line a report would hold")
    assert caught.value.description == "PRESET.YAML: FIELD METHOD: DPO"
    with pytest.raises(KeyError):  # a bug, not a user's mistake: its traceback is what a developer needs
        with user_failure(ValueError):
            raise KeyError("config")
    with pytest.raises(dg.Failure, match="--engine"):
        with user_failure():
            raise UserError("--engine spark: must be one of local, ray")
