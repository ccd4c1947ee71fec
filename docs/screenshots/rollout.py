"""Regenerates docs/rollout-ui.png, the README's picture of a rollout in the Dagster UI.

    .venv/bin/python docs/screenshots/rollout.py [OUT.png]      (make screenshots; ~2 min on 2 cores)

What it shows is made here, from scratch, in a temp folder: the tiny random Llama the tests use,
two versions of a ticket-routing task trained to give the same answer (v1 current, v2 promoted
beside it), a stepwise canary of v2 (`rollout.steps: [25, 50, 100]`) replayed through the rollout asset
into a fresh Dagster instance, then `dagster dev` on that instance and Debian's Chromium (driven by
Playwright, as ft_pipeline_tests/e2e/test_ui.py does) on the asset's page. `dagster dev` runs in
its own session and is stopped by killing its process group: it would outlive a plain SIGTERM.
SHOT_DEBUG=1 keeps the temp folder (the registry, the instance, dagster dev's log) and also saves
the events page without the chart opened, as OUT.events.png.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # ft_pipeline and its test fixtures, run from anywhere
OUT = REPO / "docs" / "rollout-ui.png"
VIEWPORT = {"width": 1600, "height": 1300}
MAX_BYTES = 300_000  # a README picture, not an archive
# Three steps of 30 pairs. Latency is left out of the picture's verdict: on two busy cores the p95
# ratio of 30 paired requests swings by up to 100x, and the picture shows equal versions passing.
TASK_STEPS = "  steps: [25, 50, 100]\n  min_requests: 30\n"
LATENCY = ("  max_p95_latency_increase: 3.0\n", "  max_p95_latency_increase: 1000000.0\n")


def main(out: Path = OUT) -> None:
    work = Path(tempfile.mkdtemp(prefix="rollout-shot-"))
    dagster_home, ft_home = work / "dagster_home", work / "ft_home"
    dagster_home.mkdir()
    ft_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ.update(DAGSTER_HOME=str(dagster_home), FT_PIPELINE_HOME=str(ft_home), GX_ANALYTICS_ENABLED="false",
                      HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    try:
        materialize_a_rollout(work, ft_home)
        with dagster_dev(dagster_home, work / "dagster-dev.log") as base:
            shoot(base, out)
    finally:
        if not os.environ.get("SHOT_DEBUG"):
            shutil.rmtree(work, ignore_errors=True)
    size = out.stat().st_size
    print(f"{out}: {size:,} bytes")
    if size > MAX_BYTES:
        sys.exit(f"{out}: {size:,} bytes, over {MAX_BYTES:,}: make VIEWPORT smaller")


def materialize_a_rollout(work: Path, ft_home: Path) -> None:
    """v1 current, v2 beside it, both answering `billing`; v2's stepwise canary replayed by the
    rollout asset into the instance under DAGSTER_HOME, as the UI's Materialize would."""
    import dagster as dg

    from ft_pipeline.defs.serving.rollout import rollout
    from ft_pipeline_tests.conftest import build_tiny_llama
    from ft_pipeline_tests.core.serving.rollout_helpers import TASK, publish_trained, write_replay

    task = TASK.replace("  min_requests: 20\n", TASK_STEPS).replace(*LATENCY)
    model = build_tiny_llama(work / "tiny-llama")
    publish_trained(ft_home, model, work, "billing", 0, True, task=task)
    publish_trained(ft_home, model, work, "billing", 1, False, task=task)
    replay = write_replay(work / "replay.jsonl", n=260)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([rollout], instance=instance, run_config={
            "ops": {"rollout": {"config": {"version": "v2", "replay": str(replay)}}}})
    [check] = result.get_asset_check_evaluations()
    if not check.passed:  # the README shows a rollout going all the way
        raise SystemExit(f"the rollout did not pass: {check.description}; {check.metadata}")


class dagster_dev:
    """`dagster dev` on 127.0.0.1 in its own session (webserver, daemon and code server in one
    process group), killed as a group on exit."""

    def __init__(self, dagster_home: Path, log: Path):
        self.dagster_home, self.log = dagster_home, log

    def __enter__(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
             "-p", str(port)], cwd=self.dagster_home, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"dagster dev exited: {self.log.read_text()[-2000:]}")
            try:
                if b"dagster_webserver_version" in urllib.request.urlopen(f"{base}/server_info", timeout=5).read():
                    return base
            except OSError:
                pass
            time.sleep(1)
        self.__exit__()
        raise SystemExit("dagster dev not up after 240 s")

    def __exit__(self, *exc) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def shoot(base: str, out: Path) -> None:
    """The rollout asset's page: its latest materialization, whose `steps` metadata is the chart of
    the share over time and each step's gate (opened from the metadata table)."""
    from playwright.sync_api import sync_playwright

    from ft_pipeline_tests.e2e.test_ui import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000)
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
        page.goto(f"{base}/assets/rollout?view=events")
        page.get_by_text("paired_requests").first.wait_for()
        page.wait_for_timeout(2000)  # the metadata table settles
        if os.environ.get("SHOT_DEBUG"):
            page.screenshot(path=str(out.with_suffix(".events.png")))
        page.get_by_text("[Show Markdown]").nth(_markdown_index(page, "steps")).click()
        page.get_by_role("img").last.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out))
        browser.close()


def _markdown_index(page, key: str) -> int:
    """Which "[Show Markdown]" button belongs to the metadata entry `key`."""
    rows = page.locator("tr").filter(has=page.get_by_text("[Show Markdown]"))
    for k in range(rows.count()):
        if rows.nth(k).locator("td").first.inner_text().strip() == key:
            return k
    raise SystemExit(f"no markdown metadata entry {key!r} on the page")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else OUT)
