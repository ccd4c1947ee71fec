"""`ft-pipeline run`'s options become the run config the assets read (one place, runner.run_config)."""
from ft_pipeline import cli, runner


def test_options_become_the_run_config_of_the_assets_they_steer():
    request = runner.RunRequest(sources=["a.jsonl"], task="t.yaml", preset="p.yaml", max_steps=7, max_examples=9,
                                base_model="Qwen/Qwen2.5-7B-Instruct", override_reason="regulator wants on-prem")
    config = runner.run_config(request, "/abs/t.yaml")
    assert config["ops"]["task"] == {"config": {"path": "/abs/t.yaml"}}
    assert config["resources"]["training_plan"]["config"] == {"preset": "p.yaml", "max_steps": 7}
    assert config["ops"]["fit_assessment"]["config"] == {"max_examples": 9, "override": True,
                                                         "override_reason": "regulator wants on-prem"}
    assert config["ops"]["eval_report"]["config"] == {"max_examples": 9}
    assert config["ops"]["base_model"]["config"] == {"name_or_path": "Qwen/Qwen2.5-7B-Instruct"}
    plain = runner.run_config(runner.RunRequest(sources=["a.jsonl"], task="t.yaml"), "/abs/t.yaml")
    assert set(plain["ops"]) == {"task"} and "resources" not in plain


def test_an_override_without_a_reason_is_refused_in_one_line(tmp_path, capsys):
    task = tmp_path / "task.yaml"
    task.write_text("name: t\ntype: classification\n")
    source = tmp_path / "s.jsonl"
    source.write_text("")
    assert cli.main(["run", str(source), "--task", str(task), "--override-fit", "  "]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ft-pipeline run: error: --override-fit: give the reason training goes ahead against the fit assessment (it is recorded)"


def test_a_failed_step_is_explained_in_one_line_without_the_crash_message():
    """A dg.Failure's description is written for the user; a crash is named by its own class (not
    Dagster's wrapper), and its message, which may quote a record, is left to the run log."""
    import dagster as dg

    @dg.asset
    def refuses():
        raise dg.Failure(description="data/x.jsonl: no record left to prepare\nsecond line")

    @dg.asset
    def crashes():
        raise KeyError("jane.roe@example.com")

    with dg.instance_for_test() as instance:
        refused = dg.materialize([refuses], instance=instance, raise_on_error=False)
        crashed = dg.materialize([crashes], instance=instance, raise_on_error=False)
    assert runner._failure(refused) == "data/x.jsonl: no record left to prepare"
    assert runner._failure(crashed) == "KeyError (the run log in the UI has the traceback)"


def test_a_preset_continuing_an_adapter_nothing_can_make_stops_before_ingest_in_one_line(tmp_path, ft_home, capsys,
                                                                                         monkeypatch):
    """The chosen preset continues adapters/<name>, which is not in the home and which no preset of
    that name can train: `run` says so in one line and exits 2 within 2 s, before any ingest (no
    raw zone, no Dagster run)."""
    import time

    from ft_pipeline_tests.defs.pipeline_helpers import DEMO_TASK, demo_slice

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    source = demo_slice(tmp_path / "input.jsonl")
    preset = tmp_path / "grpo.yaml"
    preset.write_text("method: grpo\nbase_model: smollm2-135m-instruct\ninit_adapter: adapters/never-trained\n")
    started = time.monotonic()
    code = cli.main(["run", str(source), "--task", str(DEMO_TASK), "--method", "grpo", "--preset", str(preset)])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 2 and elapsed < 2.0, (code, elapsed)
    assert err == (f"ft-pipeline run: error: {preset}: field init_adapter: 'adapters/never-trained' holds no LoRA "
                   f"adapter and no preset trains one (adapters/<name> is trained by <name>.yaml in {tmp_path} or "
                   f"{runner.paths.REPO_ROOT / 'configs' / 'presets'})")
    assert not (ft_home / "raw").exists() and not (tmp_path / "dagster_home").exists()


def test_the_bundled_grpo_preset_passes_the_up_front_check_in_a_fresh_home(tmp_path, ft_home):
    """It continues adapters/smollm2-cpu-sft, which no run has made: the run trains it first."""
    from ft_pipeline_tests.defs.pipeline_helpers import DEMO_TASK, demo_slice

    request = runner.RunRequest(sources=[str(demo_slice(tmp_path / "input.jsonl"))], task=str(DEMO_TASK), method="grpo")
    assert runner.check_request(request).name
    assert not (ft_home / "adapters").exists()
