"""Registry paths come from the command line: a name or version that would leave the registry
is refused, so `current` cannot point outside it (and past the refusal to roll back to a version
trained on erased records)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline_tests.core.release.test_registry import stage


@pytest.fixture
def reg(tmp_path):
    root = tmp_path / "registry"
    registry.publish(root, "m", stage(root, "m", "one"))
    registry.publish(root, "m", stage(root, "m", "two"))
    return root


@pytest.mark.parametrize("to", ["/etc", "../../outside", "v1/../../x", "current", "v0x", ""])
def test_rollback_to_a_path_is_refused(reg, to):
    with pytest.raises(registry.RegistryError, match="not a registry version"):
        registry.rollback(reg, "m", to)
    assert registry.current_version(reg, "m") == "v2"


@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", "..", ".staging", "UPPER", "a" * 65])
def test_names_that_leave_the_registry_are_refused(reg, name):
    with pytest.raises(registry.RegistryError, match="not a registry name"):
        registry.staging_dir(reg, name)
    with pytest.raises(registry.RegistryError, match="not a registry name"):
        registry.resolve(reg, name)
    assert sorted(p.name for p in reg.parent.iterdir()) == ["registry"]


def test_the_cli_says_so_in_one_line(reg, tmp_path):
    env = {**os.environ, "FT_PIPELINE_HOME": str(reg.parent)}
    for argv in (["rollback", "--name", "m", "--to", "/etc"], ["rollback", "--name", "../../x"],
                 ["audit", "--name", "m", "--version", "../../../etc"]):
        done = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", *argv], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert "not a registry" in done.stderr
    assert os.readlink(reg / "m" / "current") == "v2"


def test_two_releases_stage_apart(reg):
    first, second = registry.staging_dir(reg, "m"), registry.staging_dir(reg, "m")
    (first / "weights").write_text("one")
    assert first != second and (first / "weights").read_text() == "one"
