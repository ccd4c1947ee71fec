"""`ft-pipeline run` on tasks unlike the demo, end to end on the tiny model: a CSV classification
export with its own column names and no ids, a math task trained with GRPO, a free-text generation
task. Each run goes through every asset and gate; the report is in the task's own metric, and that
metric is recomputed here from the saved predictions with the library that defines it."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from ft_pipeline import cli
from ft_pipeline_tests.defs.pipeline_helpers import write_preset

VERIFIED = {"label_verified": "true", "annotator": "ops-team", "verified_at": "2026-10-01T09:00:00Z"}
INTENTS = {
    "card_lost": ["I lost my card at the station", "my card is gone, I cannot find it", "card missing since yesterday"],
    "refund": ["I want my money back for the order", "please refund the double charge", "refund the fee you took"],
    "balance": ["how much money is on my account", "what is my current balance", "show the balance of savings"],
}


def words(i: int, n: int = 10) -> str:
    """Filler that makes every record its own (templated records are near-copies of each other,
    and the export's contamination gate rightly keeps those out of the test split)."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(i)
    return " ".join(fake.words(n, unique=True))


def classification_source(path: Path) -> Path:
    """A bank's export as it comes: its own column names, no id column."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "category", *VERIFIED])
        writer.writeheader()
        for i in range(20):
            for j, (label, phrasings) in enumerate(INTENTS.items()):
                writer.writerow({"text": f"{phrasings[i % 3]}: {words(3 * i + j)}", "category": label, **VERIFIED})
    return path


def math_source(path: Path) -> Path:
    rows = [{"id": f"m{i}", "prompt": f"{words(i, 6)}: someone has {i} of them and gets {i + 3} more. How many now?",
             "reference": f"{i} + {i + 3} = {2 * i + 3}\n#### {2 * i + 3}",
             "label_verified": True, "annotator": "teacher", "verified_at": "2026-10-01T09:00:00Z"} for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def generation_source(path: Path) -> Path:
    rows = [{"id": f"g{i}", "prompt": f"A question about {words(i, 8)}?", "completion": f"Thanks: {words(1000 + i, 10)}.",
             "label_verified": True, "annotator": "support-lead", "verified_at": "2026-10-01T09:00:00Z"}
            for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def preference_source(path: Path) -> Path:
    """Multi-turn prompts with a helpful reply chosen over a curt one; a third held out as test."""
    rows = [{"id": f"p{i}", "split": "test" if i % 3 == 0 else "train",
             "prompt": [{"role": "user", "content": f"Hello, about {words(i, 6)}."},
                        {"role": "assistant", "content": "Sure, what would you like to know?"},
                        {"role": "user", "content": f"Explain {words(500 + i, 4)} please."}],
             "chosen": f"Happy to explain: {words(1000 + i, 8)}.", "rejected": "No.",
             "label_verified": True, "annotator": "raters", "verified_at": "2026-10-01T09:00:00Z"} for i in range(45)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TASKS = {
    "classification": ("""\
name: bank-intents
type: classification
system_prompt: Classify the customer's message.
metric: accuracy
target: 0.9
columns: {text: prompt, category: completion}
""", classification_source, "intents.csv", {}),
    "math": ("""\
name: apples
type: math
system_prompt: Solve the problem.
metric: numeric_match
target: 0.9
max_new_tokens: 16
method: grpo
""", math_source, "math.jsonl", {"num_generations": 2, "max_completion_length": 8, "per_device_batch_size": 2}),
    "generation": ("""\
name: support-replies
type: generation
system_prompt: Reply to the customer politely.
metric: chrf
target: 0.9
max_new_tokens: 16
""", generation_source, "replies.jsonl", {}),
    "preference": ("""\
name: helpful-replies
type: preference
system_prompt: Be helpful.
target: 0.9
""", preference_source, "pairs.jsonl", {"per_device_batch_size": 2}),
}


def _preset(path: Path, method: str, extra: dict) -> Path:
    import yaml

    config = yaml.safe_load(write_preset(path, max_steps=2, save_steps=2).read_text())
    config.update(method=method, **extra)
    if method != "sft":
        config.pop("assistant_only_loss")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture()
def homes(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "ft_home"))
    return tmp_path


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_run_on_a_task_unlike_the_demo(kind, homes, tiny_model_dir, capsys):
    from ft_pipeline.core.jsonl import iter_jsonl
    from ft_pipeline.core import metrics
    from ft_pipeline.core.task import TaskConfig

    text, make_source, name, preset_extra = TASKS[kind]
    task_file = homes / "task.yaml"
    task_file.write_text(text)
    source = make_source(homes / name)
    task = TaskConfig.from_yaml(task_file)
    preset = _preset(homes / "preset.yaml", task.method, preset_extra)

    code = cli.main(["run", str(source), "--task", str(task_file), "--preset", str(preset),
                     "--base-model", str(tiny_model_dir), "--max-examples", "8"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) >= {"run_id", "success", "metric", "variants", "failed_gates", "promoted", "eval_report"}
    assert summary["metric"] == task.metric
    # A random tiny model cannot beat its base: a release gate stops the run, by name, and exit 1 says so.
    assert code == 1 and not summary["success"] and summary["promoted"] is None
    assert "tuned_beats_base" in summary["failed_gates"]
    # A preference task has no prompt-only baseline: it is not applicable, and not failed.
    expected = {"base", "tuned"} | ({"prompt_baseline"} if task.type != "preference" else set())
    assert set(summary["variants"]) == expected
    if task.type == "preference":
        assert "tuned_beats_prompt_baseline" not in summary["failed_gates"]

    # The report is in the task's metric, and the number is the library's on the saved predictions.
    report = Path(summary["eval_report"])
    predictions = list(iter_jsonl(report.parent / "predictions.jsonl"))
    assert len(predictions) >= 5, "the held-out split must not have emptied"
    if task.type == "preference":
        base = _preference_accuracy_by_hand(homes, tiny_model_dir, [p["id"] for p in predictions])
        assert summary["variants"]["base"] == pytest.approx(base, abs=1e-4)
        return
    references = _references(homes, predictions)
    for variant in ("base", "tuned"):
        recomputed = _library_metric(task, [p[variant] for p in predictions], references)
        assert summary["variants"][variant] == pytest.approx(recomputed, abs=1e-4), variant
    assert metrics.score(task, [p["tuned"] for p in predictions], references).metric == task.metric


def _preference_accuracy_by_hand(homes: Path, model_dir: Path, ids: list[str]) -> float:
    """Length-normalized log-likelihood of chosen vs rejected, token by token with transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ft_pipeline.core.jsonl import iter_jsonl

    [export] = (homes / "ft_home" / "data" / "jsonl_export").iterdir()
    rows = {r["id"]: r for r in iter_jsonl(export / "preference_test.jsonl")}
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)

    def per_token(prompt, answer) -> float:
        prefix = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
        head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        tail = tokenizer(full[len(prefix):], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([head + tail])).logits[0].log_softmax(-1)
        return sum(logits[len(head) + k - 1, token].item() for k, token in enumerate(tail)) / len(tail)

    wins = [per_token(rows[i]["prompt"], rows[i]["chosen"]) > per_token(rows[i]["prompt"], rows[i]["rejected"])
            for i in ids]
    return sum(wins) / len(wins)


def _references(homes: Path, predictions: list[dict]) -> list[str]:
    from ft_pipeline.core.jsonl import iter_jsonl

    [export] = (homes / "ft_home" / "data" / "jsonl_export").iterdir()
    by_id = {r["id"]: r["messages"][-1]["content"] for r in iter_jsonl(export / "test.jsonl")}
    return [by_id[p["id"]] for p in predictions]


def _library_metric(task, predictions: list[str], references: list[str]) -> float:
    """Each type's metric computed here straight from its library, not through metrics.py."""
    if task.type == "classification":
        from sklearn.metrics import accuracy_score

        from ft_pipeline.core.answers import parse_label

        labels = sorted(INTENTS)
        return accuracy_score(references, [parse_label(p, labels) or "<none>" for p in predictions])
    if task.type == "generation":
        from sacrebleu.metrics import CHRF

        chrf = CHRF()
        return sum(chrf.sentence_score(p, [r]).score / 100 for p, r in zip(predictions, references)) / len(references)
    from math_verify import parse, verify

    from ft_pipeline.core.answers import extract_number

    hits = [verify(parse(extract_number(r, task.answer_regex)), parse(extract_number(p, task.answer_regex) or ""))
            for p, r in zip(predictions, references)]
    return sum(map(bool, hits)) / len(hits)


def test_a_source_without_the_mapped_column_is_one_line_before_anything_runs(homes, capsys):
    task_file = homes / "task.yaml"
    task_file.write_text(TASKS["classification"][0])
    source = homes / "other.csv"
    source.write_text("body,category\nhello,refund\n")
    assert cli.main(["run", str(source), "--task", str(task_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "columns.text" in err and "other.csv" in err and str(task_file) in err
    assert _written(homes) == []  # nothing was written, no model loaded


@pytest.mark.parametrize("body, field", [
    ("name: x\ntype: classification\nmetric: rouge_l\n", "field metric"),
    ("name: x\ntype: math\nanswer_pattern: '(unclosed'\n", "field answer_pattern"),
    ("name: x\ntype: structured\nschema: {type: objectt}\n", "field schema"),
    ("name: x\ntype: sentiment\n", "field type"),
    # found by trying: these stopped the run only at the asset that reads them, after ingest
    ("name: x\ntype: classification\nknowledge: ./no-such-folder\n", "field knowledge"),
    ("name: x\ntype: classification\nredaction: {protected_documents: ./secret/*.pdf}\n",
     "field redaction.protected_documents: no file matches"),
    ("name: x\ntype: classification\nredaction: {patterns: {ACCT: ['(unclosed']}}\n", "field redaction.patterns.ACCT"),
    ("name: x\ntype: classification\nredaction: {alow_list: [Visa]}\n", "field redaction.alow_list"),
])
def test_a_bad_task_file_is_one_line_naming_file_and_field(homes, capsys, body, field):
    task_file = homes / "bad.yaml"
    task_file.write_text(body)
    source = classification_source(homes / "intents.csv")
    assert cli.main(["run", str(source), "--task", str(task_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(task_file) in err and field in err


@pytest.mark.parametrize("line, field", [
    ("learning_rate: two", "TrainingConfig.learning_rate='two'"),
    ("lr_scheduler: cosinus", "TrainingConfig.lr_scheduler='cosinus'"),
    ("packing: 'yes'", "TrainingConfig.packing='yes'"),
])
def test_a_bad_preset_is_one_line_naming_file_and_field(homes, capsys, line, field):
    task_file = homes / "task.yaml"
    task_file.write_text(TASKS["classification"][0])
    preset = homes / "preset.yaml"
    preset.write_text(f"method: sft\n{line}\n")
    source = classification_source(homes / "intents.csv")
    assert cli.main(["run", str(source), "--task", str(task_file), "--preset", str(preset)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(preset) in err and field in err
    assert _written(homes) == []  # nothing was written, no model loaded


@pytest.mark.parametrize("where", ["option", "preset"])
@pytest.mark.parametrize("model, says", [
    ("nowhere", "local path {path} does not exist"),
    ("no-weights", "{path} has no weights to size the model by"),
])
def test_a_local_base_model_that_cannot_be_used_is_one_line_before_anything_runs(homes, capsys, tiny_model_dir,
                                                                                  where, model, says):
    """Found by trying: `--base-model /typo` ingested and redacted every source, then stopped at
    base_model with a Dagster traceback. Now it stops first, as a preset or task mistake does."""
    path = homes / model
    if model == "no-weights":  # a model folder whose weights were not copied
        shutil.copytree(tiny_model_dir, path, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    task_file = homes / "task.yaml"
    task_file.write_text(TASKS["classification"][0])
    source = classification_source(homes / "intents.csv")
    argv = ["run", str(source), "--task", str(task_file)]
    if where == "option":
        argv += ["--base-model", str(path)]
    else:
        preset = homes / "preset.yaml"
        preset.write_text(f"method: sft\nbase_model: {path}\n")
        argv += ["--preset", str(preset)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says.format(path=path) in err
    assert ("--base-model" if where == "option" else f"{homes / 'preset.yaml'}: base_model") in err
    assert _written(homes) == []  # nothing was written, no model loaded


def test_a_step_that_stops_says_why_on_the_command_line(homes, tiny_model_dir, capsys):
    """A mistake only an asset can find (here a knowledge folder with nothing to retrieve) stops the
    run at that step; the command line says which step and the step's own one-line reason."""
    (homes / "knowledge").mkdir()
    (homes / "knowledge" / "notes.pdf").write_bytes(b"%PDF-1.4")
    task_file = homes / "task.yaml"
    task_file.write_text(TASKS["classification"][0] + "knowledge: knowledge\n")
    source = classification_source(homes / "intents.csv")
    code = cli.main(["run", str(source), "--task", str(task_file), "--preset", str(_preset(homes / "p.yaml", "sft", {})),
                     "--base-model", str(tiny_model_dir), "--max-examples", "8"])
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    why = f"{homes / 'knowledge'}: knowledge folder holds no .txt or .md text"
    assert code == 1 and summary["failed_step"] == "fit_assessment" and summary["failure"] == why
    assert f"stopped: step fit_assessment failed: {why}; open the UI for details: make ui" in err


def test_a_source_whose_every_record_is_quarantined_stops_at_ingest_saying_why(homes, capsys):
    """Found by trying: a Latin-1 CSV had its one record quarantined (invalid UTF-8), and the run
    then crashed one step later on an empty file. Now the ingest step stops, with the reasons."""
    task_file = homes / "task.yaml"
    task_file.write_text(TASKS["classification"][0])
    source = homes / "latin1.csv"
    source.write_bytes("text,category\ncafé card lost,card_lost\n".encode("latin-1"))
    assert cli.main(["run", str(source), "--task", str(task_file)]) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["failed_step"] == "raw_dataset"
    assert summary["failure"].startswith(f"{source}: no record left to prepare: 1 quarantined (invalid_utf8 x1), 0 erased")
    assert "café" not in summary["failure"]  # the raw text stays in the raw zone


def _written(homes) -> list[str]:
    """Files a refused run left in its home; the task-text check may cache Faker's name lists
    (a cache of a library's data, written by whichever step first needs it)."""
    return [str(p) for p in (homes / "ft_home").rglob("*") if p.is_file() and not p.name.startswith("name_gazetteer-")]
