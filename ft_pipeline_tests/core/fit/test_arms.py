import pytest

from ft_pipeline.core.fit import arms
from ft_pipeline.core.fit.retrieval import Bm25Index, load_knowledge
from ft_pipeline.core.task import TaskConfig

TASK = TaskConfig(name="intents", type="classification", metric="accuracy", target=0.8,
                  labels=["card_lost", "refund", "address_change"])


def _record(i, question, label):
    return {"id": f"r{i}", "messages": [{"role": "system", "content": "old system"},
                                        {"role": "user", "content": question},
                                        {"role": "assistant", "content": label}]}


TRAIN = [_record(1, "I lost my card on the bus", "card_lost"),
         _record(2, "my card was stolen yesterday", "card_lost"),
         _record(3, "please refund the double charge", "refund"),
         _record(4, "I moved house, new address please", "address_change"),
         _record(5, "refund my ticket, the train was cancelled", "refund")]
TEST = [_record(9, "I want a refund for the cancelled train", "refund"),
        _record(10, "stolen card, what now", "card_lost")]


def test_zero_shot_replaces_the_system_turn_and_asks_the_question():
    built = arms.build_arms(TASK, ["zero_shot"], TRAIN, TEST, "Pick a label.", k=2)
    assert built["zero_shot"].prompts[0] == [{"role": "system", "content": "Pick a label."},
                                             {"role": "user", "content": "I want a refund for the cancelled train"}]


def test_few_shot_spreads_its_fixed_examples_over_labels():
    shots = arms.fixed_shots(TASK, TRAIN, 3)
    assert [s["id"] for s in shots] == ["r1", "r3", "r4"]
    built = arms.build_arms(TASK, ["few_shot"], TRAIN, TEST, "Pick.", k=3)
    prompt = built["few_shot"].prompts[1]
    assert [m["role"] for m in prompt] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert built["few_shot"].context[0] == ["r1", "r3", "r4"] == built["few_shot"].context[1]


def test_retrieved_few_shot_finds_the_most_similar_training_examples():
    built = arms.build_arms(TASK, ["retrieved_few_shot"], TRAIN, TEST, "Pick.", k=2)
    assert built["retrieved_few_shot"].context[0] == ["r5", "r3"]  # refund + cancelled train first
    assert built["retrieved_few_shot"].context[1][0] == "r2"  # "stolen card"


def test_rag_puts_the_best_chunks_in_the_system_prompt(tmp_path):
    (tmp_path / "cards.md").write_text("Lost or stolen cards are blocked at once.\n\nA new card arrives in 5 days.")
    (tmp_path / "refunds.txt").write_text("Refunds for cancelled trains are paid within 14 days.")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    knowledge = load_knowledge(tmp_path, chunk_words=12, overlap_words=2)
    assert [(c.source, c.index) for c in knowledge] == [("cards.md", 0), ("cards.md", 1), ("refunds.txt", 0)]
    built = arms.build_arms(TASK, ["rag"], TRAIN, TEST, "Pick.", k=2, knowledge=knowledge, rag_chunks=1)
    assert built["rag"].context == [["refunds.txt#0"], ["cards.md#0"]]
    assert "[1] (refunds.txt) Refunds for cancelled trains" in built["rag"].prompts[0][0]["content"]


def test_rag_without_knowledge_is_skipped_with_a_warning():
    warnings = []
    built = arms.build_arms(TASK, ["zero_shot", "rag"], TRAIN, TEST, "Pick.", k=2, warn=warnings.append)
    assert list(built) == ["zero_shot"] and "names no knowledge folder" in warnings[0]


def test_prompts_that_outgrow_the_context_lose_the_least_relevant_examples_with_a_warning():
    warnings = []
    fits = lambda prompt: len(prompt) <= 4  # system + one exchange + the question
    built = arms.build_arms(TASK, ["retrieved_few_shot"], TRAIN, TEST, "Pick.", k=3, fits=fits, warn=warnings.append)
    arm = built["retrieved_few_shot"]
    assert arm.trimmed == 2 and [len(c) for c in arm.context] == [1, 1]
    assert arm.context[0] == ["r5"]  # the best match is kept
    assert "2 of 2 prompts outgrew the model's context" in warnings[0]


def test_long_paragraphs_are_cut_into_overlapping_windows(tmp_path):
    (tmp_path / "long.md").write_text(" ".join(f"w{i}" for i in range(25)))
    chunks = load_knowledge(tmp_path, chunk_words=10, overlap_words=2)
    assert [c.text.split()[0] for c in chunks] == ["w0", "w8", "w16"]
    assert chunks[-1].text.split()[-1] == "w24"


def test_knowledge_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="knowledge folder not found"):
        load_knowledge(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no .txt or .md text"):
        load_knowledge(tmp_path)


def test_bm25_index_returns_only_matches_that_share_a_word():
    index = Bm25Index(["apples and pears", "car insurance claim", "pear tart recipe"])
    assert index.top_k(["insurance claim form", "zebra"], 2) == [[1], []]
    assert Bm25Index([]).top_k(["anything"], 3) == [[]]
