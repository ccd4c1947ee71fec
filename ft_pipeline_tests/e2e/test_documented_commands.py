"""The commands the README tells a newcomer to type are the ones the Makefile and CI run: every
`make <target>` it names exists, `make demo` and `make test` set up .venv first and then run
`ft-pipeline demo` and pytest, and CI's entry point is `make test`."""
from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from ft_pipeline_tests.conftest import REPO

README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def two_commands() -> list[list[str]]:
    """The commands in the README's "Two commands" code block, comments dropped."""
    block = re.search(r"## Two commands\s+```bash\n(.*?)```", README, re.S)
    assert block, "README.md lost its 'Two commands' block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def dry_run(target: str) -> list[str]:
    """What `make <target>` would run, one command a line (make -n runs nothing)."""
    done = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_the_readme_names_demo_and_test():
    assert two_commands() == [["make", "demo"], ["make", "test"]]


def test_every_make_target_the_readme_names_exists():
    named = set(re.findall(r"`make (\w+)`", README)) | {args[1] for args in two_commands()}
    targets = set(re.findall(r"^([\w-]+):", MAKEFILE, re.M))
    assert named >= {"demo", "test", "ui"} and named <= targets


@pytest.mark.parametrize("target, command", [
    ("demo", ".venv/bin/ft-pipeline demo"),
    ("test", ".venv/bin/python -m pytest -q"),
    ("ui", ".venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000"),
])
def test_make_targets_set_up_then_run_the_documented_command(target, command):
    assert re.search(rf"^{target}: setup$", MAKEFILE, re.M), f"`make {target}` must set up .venv first"
    assert dry_run(target)[-1] == command


def test_ci_runs_make_test():
    script = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert commands[-1] == "make test"
    assert "set -euo pipefail" in commands  # a failing step fails CI
