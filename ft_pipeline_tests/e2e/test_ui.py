"""The Dagster UI in a real browser: `dagster dev` on 127.0.0.1 with a temp instance, Debian's
Chromium driven by Playwright. Every asset and check is on screen, and a materialization launched
from the UI succeeds. Screenshots go to test-artifacts/ui/ (git-ignored)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from ft_pipeline_tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
# Offline and quiet: no component updates, sync, QUIC or first-run network calls; 127.0.0.1 only.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-proxy-server"]
ASSETS = ["task", "raw_dataset", "redacted_dataset", "label_review_sample", "bias_report", "jsonl_export",
          "base_model", "fit_assessment", "adapter_weights", "eval_report", "promoted_model"]
ARTIFACTS = REPO / "test-artifacts" / "ui"
# Wide enough that the graph, fitted to the window, draws full nodes (full names, check counts)
# rather than the zoomed-out boxes with shortened names.
VIEWPORT = {"width": 2400, "height": 1400}
SERVER_START_S, RUN_S, UI_MS = 180, 300, 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    # A server started from a background shell inherits SIGINT/SIGTERM ignored and then ignores
    # the shutdown signal; restore the defaults so the process group can be stopped.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """`dagster dev` (webserver + daemon, which dequeues runs) against a temp DAGSTER_HOME and
    FT_PIPELINE_HOME. It runs in DAGSTER_HOME: dagster.yaml's relative paths (storage, logs)
    resolve against the working directory, and must not land in the repo's own instance."""
    for binary in (CHROMIUM, REPO / ".venv" / "bin" / "dagster"):
        if not os.path.exists(binary):
            pytest.fail(f"{binary} is missing: .ci/run installs Chromium (apt) and `make setup` builds .venv")
    root = tmp_path_factory.mktemp("ui")
    home, ft_home = root / "dagster_home", root / "ft_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_PIPELINE_", "DAGSTER_PG_"))}
    env.update(DAGSTER_HOME=str(home), FT_PIPELINE_HOME=str(ft_home), GX_ANALYTICS_ENABLED="false",
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    port = _free_port()
    log = open(root / "dagster-dev.log", "wb")
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_default_signals,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            assert server.poll() is None, f"dagster dev exited ({server.returncode}); log: {root / 'dagster-dev.log'}"
            try:
                if b"dagster_webserver_version" in _get(f"{base}/server_info"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"dagster dev not up after {SERVER_START_S}s"
            time.sleep(1)
        yield {"url": base, "ft_home": ft_home, "log": root / "dagster-dev.log"}
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:  # the webserver, daemon and code servers share the group; none may outlive the test
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def page(dagster_ui):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(UI_MS)
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(dagster_ui["url"])
                   else route.abort())
        yield page
        browser.close()


def _expected_checks() -> dict[str, set[str]]:
    from ft_pipeline.definitions import defs

    checks = defaultdict(set)
    for key in defs.resolve_asset_graph().asset_check_keys:
        checks[key.asset_key.to_user_string()].add(key.name)
    return checks


GRAPH_QUERY = """{ assetNodes { assetKey { path } dependencyKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


def _served_graph(base: str) -> dict[str, dict]:
    """What the webserver serves the UI about each asset: its parents and its checks (blocking or not)."""
    nodes = _graphql(base, GRAPH_QUERY)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): {
        "parents": {"/".join(k["path"]) for k in n["dependencyKeys"]},
        "checks": {c["name"]: c["blocking"] for c in n["assetChecksOrError"].get("checks", [])}} for n in nodes}


def test_the_ui_serves_the_designed_graph(dagster_ui):
    """The graph the UI draws comes from the code location the server loaded: every asset, every
    edge and every check with its blocking flag, exactly as the definitions declare them."""
    from ft_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    expected = {key.to_user_string(): {
        "parents": {k.to_user_string() for k in graph.get(key).parent_keys},
        "checks": {c.name: graph.get_check_spec(c).blocking for c in graph.asset_check_keys if c.asset_key == key}}
        for key in graph.get_all_asset_keys()}
    assert set(expected) >= set(ASSETS)
    assert _served_graph(dagster_ui["url"]) == expected


def test_asset_graph_shows_every_asset(dagster_ui, page):
    page.goto(f"{dagster_ui['url']}/asset-groups")
    page.get_by_text("Materialize all").wait_for()
    page.get_by_text("Hide navigation").click()
    page.locator("button:has([aria-label=panel_show_right])").click()  # the asset tree beside the graph
    # Groups start collapsed to one box each; open them so every asset is drawn.
    page.locator("#zoom-slider-container").get_by_role("button", name="settings").click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    graph = page.locator("svg")
    for asset in ASSETS:
        graph.get_by_text(asset, exact=True).first.wait_for()
    page.mouse.move(1, VIEWPORT["height"] - 1)  # no hover highlight in the picture
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "asset-graph.png", full_page=True)


def test_asset_pages_show_every_check(dagster_ui, page):
    expected = _expected_checks()
    assert "labels_are_verified" in expected["redacted_dataset"]
    for asset, names in sorted(expected.items()):
        page.goto(f"{dagster_ui['url']}/assets/{asset}?view=checks")
        for name in sorted(names):
            page.get_by_text(name, exact=True).first.wait_for()
        if asset == "redacted_dataset":
            page.screenshot(path=ARTIFACTS / "redacted_dataset-checks.png", full_page=True)


def _launch_from_asset_page(page, url: str, partition: str) -> str:
    """Clicks the asset page's Materialize button, launches the partition dialog's one run, and
    returns the 8-character run id prefix that the "Launched run" toast shows."""
    page.goto(url)
    page.get_by_text("Code location").wait_for()  # the definition has loaded
    button = page.get_by_role("button").filter(has_text=re.compile(r"^Materialize"))
    launch = page.get_by_role("button").filter(has_text=re.compile(r"^Launch 1 run$"))
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    errors: list[str] = []
    for attempt in range(2):
        # Playwright waits until the button is enabled (it is disabled while the asset loads).
        button.first.click()
        try:
            # raw_dataset is partitioned by source file: pick the demo's partition in the dialog
            page.get_by_text("Select a partition or create one").click(timeout=20_000)
            page.get_by_role("menuitem").filter(has_text=partition).first.click(timeout=20_000)
            page.keyboard.press("Escape")  # close the suggestion list, keep the dialog
            launch.first.click(timeout=20_000)
            toast.first.wait_for(timeout=20_000)
            return re.search(r"Launched run ([0-9a-f]{8})", toast.first.inner_text()).group(1)
        except Exception as exc:
            # A click can land while the page is still re-rendering and be lost; one more try.
            errors.append(str(exc).splitlines()[0])
            page.screenshot(path=ARTIFACTS / f"materialize-no-launch-{attempt}.png", full_page=True)
            page.get_by_role("button", name="Cancel").click(timeout=5_000)
    pytest.fail(f"the Materialize button launched no run ({'; '.join(errors)}); "
                f"see {ARTIFACTS}/materialize-no-launch-*.png")


def _add_demo_partition(base: str) -> None:
    """Registers the bundled demo file as a raw_files partition, through the webserver's GraphQL API."""
    from ft_pipeline.cli import DEMO_SOURCE

    query = """mutation($repo: RepositorySelector!, $key: String!) {
      addDynamicPartition(repositorySelector: $repo, partitionsDefName: "raw_files", partitionKey: $key) {
        __typename ... on PythonError { message } } }"""
    repo = {"repositoryLocationName": "ft_pipeline.definitions", "repositoryName": "__repository__"}
    result = _graphql(base, query, {"repo": repo, "key": DEMO_SOURCE})["addDynamicPartition"]
    assert result["__typename"] == "AddDynamicPartitionSuccess", result


def _wait_for_run(base: str, prefix: str) -> dict:
    query = "{ runsOrError { ... on Runs { results { runId status assetSelection { path } } } } }"
    run, deadline = None, time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        runs = _graphql(base, query)["runsOrError"]["results"]
        run = next(r for r in runs if r["runId"].startswith(prefix))
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    return run


def _materialize_task(page, base: str) -> dict:
    """The task file is the one knob: its asset has a default path (the demo's task), so its
    Materialize button launches at once."""
    page.goto(f"{base}/assets/task")
    page.get_by_text("Code location").wait_for()
    page.get_by_role("button").filter(has_text=re.compile(r"^Materialize")).first.click()
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    toast.first.wait_for(timeout=20_000)
    return _wait_for_run(base, re.search(r"Launched run ([0-9a-f]{8})", toast.first.inner_text()).group(1))


def test_materialize_raw_dataset_from_the_ui(dagster_ui, page):
    # The task first (everything reads it), then one source partition. Both configs have a
    # default for every field, so each dialog launches at once, with no launchpad to fill: a
    # required field added later fails here.
    task_run = _materialize_task(page, dagster_ui["url"])
    assert task_run["status"] == "SUCCESS", f"the task run ended {task_run['status']}; server log: {dagster_ui['log']}"
    _add_demo_partition(dagster_ui["url"])
    from ft_pipeline.cli import DEMO_SOURCE

    prefix = _launch_from_asset_page(page, f"{dagster_ui['url']}/assets/raw_dataset", DEMO_SOURCE)
    run = _wait_for_run(dagster_ui["url"], prefix)
    assert run["assetSelection"] == [{"path": ["raw_dataset"]}]
    page.goto(f"{dagster_ui['url']}/runs/{run['runId']}")
    if run["status"] == "SUCCESS":
        page.get_by_text("Success", exact=True).first.wait_for()  # the run page's status tag
    page.screenshot(path=ARTIFACTS / "raw_dataset-run.png", full_page=True)
    assert run["status"] == "SUCCESS", f"run {run['runId']} ended {run['status']} (or timed out); server log: {dagster_ui['log']}"
    # The run wrote into the server's FT_PIPELINE_HOME, in the raw zone, from the bundled demo.
    records = dagster_ui["ft_home"] / "raw" / "raw_dataset" / run["runId"] / "records.jsonl"
    count = sum(1 for _ in records.open())
    assert count > 500
    # What the UI shows of that materialization (its events view reads this) is what the run wrote.
    shown = _latest_materialization(dagster_ui["url"], "raw_dataset", DEMO_SOURCE)
    assert shown["runId"] == run["runId"] and shown["partition"] == DEMO_SOURCE
    assert shown["metadata"]["records"] == count and shown["metadata"]["path"] == str(records)


def _latest_materialization(base: str, asset: str, partition: str) -> dict:
    query = """query($key: AssetKeyInput!, $partition: String!) { assetOrError(assetKey: $key) { ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) { runId partition metadataEntries { label
        ... on IntMetadataEntry { intValue } ... on PathMetadataEntry { path } } } } } }"""
    [event] = _graphql(base, query, {"key": {"path": [asset]}, "partition": partition})["assetOrError"]["assetMaterializations"]
    values = {e["label"]: e.get("intValue", e.get("path")) for e in event["metadataEntries"]}
    return {"runId": event["runId"], "partition": event["partition"], "metadata": values}
