"""The fit decision measured for real: SmolLM2 (the bundled base model) answers each arm's prompts,
BM25 retrieves, the task's metric scores. Three outcomes, three tasks built so the right answer is
known: facts only the knowledge folder holds (RAG wins), facts the base model knows (prompt
engineering wins), and the demo (tests/defs: no arm reaches, fine-tuning)."""
import json
import random

import pytest

from ft_pipeline.core import paths
from ft_pipeline.core.fit.assessment import run_assessment
from ft_pipeline.core.fit.fit_config import FitConfig
from ft_pipeline.core.task import TaskConfig
from ft_pipeline.core.training.config import TrainingConfig

CITIES = ["oslo", "lima", "cairo", "perth", "quito"]
PROJECTS = ["Kestrel", "Marigold", "Basalt", "Juniper", "Osprey", "Tundra", "Cobalt", "Willow", "Falcon", "Garnet",
            "Harbor", "Iris", "Jasper", "Lumen", "Maple", "Nimbus", "Onyx", "Pebble", "Quartz", "Raven",
            "Sable", "Thistle", "Umber", "Vesper", "Wren", "Yarrow", "Zinnia", "Alder", "Birch", "Cedar"]


def _record(rid, question, answer):
    return {"id": rid, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def _export(path, train, test):
    path.mkdir()
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        (path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(task, config, export, smollm2, tmp_path):
    _, model = smollm2
    training = TrainingConfig.from_yaml(paths.REPO_ROOT / "configs/presets/smollm2-cpu-sft.yaml")
    logs = []
    result = run_assessment(task, config, export, str(model), training, n_params=None, progress=lambda _: None,
                            log=logs.append, warn=logs.append, workdir=tmp_path)
    return result, logs


def test_rag_wins_when_the_knowledge_folder_holds_the_answers(smollm2, tmp_path):
    rng = random.Random(3)
    office = {p: rng.choice(CITIES) for p in PROJECTS}
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "projects.md").write_text("\n\n".join(f"Project {p} is run by the {c.title()} office."
                                                       for p, c in office.items()))
    rows = [_record(f"p{i}", f"Which office runs project {p}?", c) for i, (p, c) in enumerate(office.items())]
    task = TaskConfig(name="offices", type="classification", metric="accuracy", target=0.7, labels=CITIES,
                      system_prompt="You answer which city office runs an internal project. Reply with the city only.",
                      max_new_tokens=16, knowledge=str(knowledge), requests_per_month=10_000,
                      # Knowledge is redacted like records, and NER takes "Project Kestrel" and
                      # "the Oslo office" for people and places: the task allow-lists its own
                      # project and office names, as a user would for these false positives.
                      redaction={"allow_list": PROJECTS + [c.title() for c in CITIES]})
    config = FitConfig(arms=["zero_shot", "retrieved_few_shot", "rag"], rag_chunks=1, chunk_words=10, overlap_words=2)
    result, logs = _run(task, config, _export(tmp_path / "export", rows[:10], rows[10:]), smollm2, tmp_path)

    decision = result.decision
    arms = decision["arms"]
    assert set(arms) == {"zero_shot", "retrieved_few_shot", "rag"}
    # Training examples are about other projects: neither prompt arm can know the office.
    assert arms["zero_shot"]["high"] < 0.7 and arms["retrieved_few_shot"]["high"] < 0.7
    assert arms["rag"]["low"] >= 0.7, arms["rag"]
    assert (decision["recommendation"], decision["winner"], decision["best_alternative"]) == ("rag", "rag", "rag")
    assert "knowledge: 30 chunks" in " ".join(logs)
    # Cost follows the prompt: documents in the prompt cost more than none.
    assert arms["rag"]["usd_per_month"] > arms["zero_shot"]["usd_per_month"] > 0
    assert [set(p) for p in result.predictions] == [{"id", "zero_shot", "retrieved_few_shot", "rag"}] * 20


def test_prompt_engineering_wins_when_zero_shot_already_meets_the_target(smollm2, tmp_path):
    capitals = {"France": "paris", "Germany": "berlin", "Spain": "madrid", "Italy": "rome", "Japan": "tokyo",
                "Egypt": "cairo", "Russia": "moscow", "England": "london", "China": "beijing", "Greece": "athens"}
    rows = [_record(f"{kind}{i}", f"{question} {country}?", city) for i, (country, city) in enumerate(capitals.items())
            for kind, question in (("a", "What is the capital of"), ("b", "Which city is the capital of"))]
    task = TaskConfig(name="capitals", type="classification", metric="accuracy", target=0.6,
                      labels=sorted(capitals.values()), system_prompt="You name capital cities.", max_new_tokens=8)
    config = FitConfig(arms=["zero_shot", "few_shot"], shots=2)
    result, _ = _run(task, config, _export(tmp_path / "export", rows[:4], rows), smollm2, tmp_path)

    decision = result.decision
    assert decision["arms"]["zero_shot"]["low"] >= 0.6, decision["arms"]["zero_shot"]
    # Both may reach the target; zero-shot's shorter prompt is the cheaper one.
    assert (decision["recommendation"], decision["winner"]) == ("prompt_engineering", "zero_shot")
    assert decision["arms"]["few_shot"]["prompt_tokens"] > decision["arms"]["zero_shot"]["prompt_tokens"]
    assert result.few_shot_ids == ["a0", "a1"]
    assert (result.cost["n_params"], result.cost["parameters_from"]) == (135_000_000, "read from the model name")


@pytest.mark.parametrize("name, expected", [("Qwen/Qwen2.5-7B-Instruct", 7e9), ("meta-llama/Llama-2-13b-hf", 13e9),
                                            ("HuggingFaceTB/SmolLM2-135M-Instruct", 135e6)])
def test_a_hub_model_is_priced_by_the_size_in_its_name(name, expected):
    from ft_pipeline.core.fit.assessment import _parameters

    assert _parameters(None, name, warn=pytest.fail) == (int(expected), "read from the model name")
