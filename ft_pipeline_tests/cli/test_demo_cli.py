"""`ft-pipeline demo` is `run` on the bundled demo with run's defaults: every option `run` has
reaches the request (an option added to `run` once broke `make demo` with an AttributeError)."""
from __future__ import annotations

import pytest

from ft_pipeline import cli, runner


class _Stop(Exception):
    pass


def test_demo_runs_the_bundled_demo_with_every_default_of_run(monkeypatch):
    seen = {}

    def fake_run(request):
        seen["request"] = request
        raise _Stop

    monkeypatch.setattr(runner, "run", fake_run)
    with pytest.raises(_Stop):
        cli.main(["demo"])
    request = seen["request"]
    [source] = request.sources
    assert source.endswith(cli.DEMO_SOURCE) and request.task.endswith(cli.DEMO_TASK)
    assert (request.method, request.engine, request.override_reason, request.max_steps) == ("", "", "", 0)

