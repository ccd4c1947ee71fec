"""Batched greedy generation on the tiny Llama, with and without a LoRA adapter."""
from __future__ import annotations

import shutil

import pytest

from ft_pipeline.core.evaluation import generation
from ft_pipeline.core.evaluation.generation import continuation_logprobs, generate, load_model

PROMPTS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "triage"}, {"role": "user", "content": "my card was charged twice"}],
    [{"role": "user", "content": "refund"}],
    [{"role": "user", "content": "my claim status is pending, please update my address"}],
    [{"role": "user", "content": "policy"}],
    [{"role": "user", "content": "insurance customer support"}],
]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny Llama with larger random weights: at the default init it answers every prompt
    with the same newlines, which would make order and batching bugs invisible."""
    import torch
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("varied-llama")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.3)
    model.save_pretrained(path)
    generation.clear_cache()
    return path


@pytest.fixture(scope="module")
def adapter_dir(model_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    import torch

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    # init_lora_weights=False draws B at random too, so the adapter changes the outputs the way a
    # trained one would (the default init makes it a no-op).
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    path = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, config).save_pretrained(path)
    return path


def test_one_answer_per_prompt_in_original_order(model_dir):
    outputs = generate(model_dir, PROMPTS, max_new_tokens=6, batch_size=4)
    assert len(outputs) == len(PROMPTS) and all(isinstance(o, str) for o in outputs)
    assert len(set(outputs)) > 1, "answers do not depend on the prompt; the order check would be vacuous"
    reversed_outputs = generate(model_dir, PROMPTS[::-1], max_new_tokens=6, batch_size=4)
    assert reversed_outputs == outputs[::-1]
    singles = [generate(model_dir, [p], max_new_tokens=6)[0] for p in PROMPTS[:2]]
    assert singles == outputs[:2]


def test_batch_size_does_not_change_greedy_answers(model_dir):
    one = generate(model_dir, PROMPTS, max_new_tokens=6, batch_size=1)
    four = generate(model_dir, PROMPTS, max_new_tokens=6, batch_size=4)
    assert one == four


FEW_SHOT = [{"role": "system", "content": "triage each customer message into intent and priority"},
            {"role": "user", "content": "my card was charged twice"},
            {"role": "assistant", "content": '{"intent": "billing_dispute", "priority": "high"}'},
            {"role": "user", "content": "please update my address"},
            {"role": "assistant", "content": '{"intent": "account", "priority": "low"}'}]


def test_a_shared_prefix_is_computed_once_and_changes_no_answer(model_dir, monkeypatch):
    """Prompts that share a system prompt and few-shot examples: the shared tokens are prefilled
    once per batch and their cache reused (generate sees a cache, and is fed only the rest), and
    every greedy answer is the one computed without sharing, whatever the prompts' lengths."""
    prompts = [[*FEW_SHOT, {"role": "user", "content": text}] for text in
               ("hello", "my claim status is pending", "refund", "insurance policy claim support refund please")]
    monkeypatch.setattr(generation, "MIN_SHARED_PREFIX", 10**9)
    plain = generate(model_dir, prompts, max_new_tokens=8, batch_size=4)
    monkeypatch.setattr(generation, "MIN_SHARED_PREFIX", 16)
    model, tokenizer = load_model(model_dir)
    seen = []
    real = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: seen.append(kw.get("past_key_values")) or real(**kw))
    shared = generate(model_dir, prompts, max_new_tokens=8, batch_size=4)
    assert shared == plain
    assert len(set(plain)) > 1, "answers do not depend on the prompt; the comparison would be vacuous"
    [cache] = seen
    assert cache is not None and cache.get_seq_length() > 20, "the shared prefix was not prefilled"


def test_progress_reports_every_batch(model_dir):
    calls = []
    generate(model_dir, PROMPTS, max_new_tokens=2, batch_size=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]


def test_model_is_loaded_once_per_process(model_dir):
    generation.clear_cache()
    generate(model_dir, PROMPTS[:2], max_new_tokens=2)
    generate(model_dir, PROMPTS[2:], max_new_tokens=2)
    info = generation._load.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_adapter_is_merged_and_changes_answers(model_dir, adapter_dir):
    base_before = generate(model_dir, PROMPTS, max_new_tokens=6)
    tuned = generate(model_dir, PROMPTS, adapter_dir=adapter_dir, max_new_tokens=6)
    assert len(tuned) == len(PROMPTS)
    assert tuned != base_before

    model, _ = load_model(model_dir, adapter_dir)
    assert not any("lora" in name for name, _ in model.named_parameters()), "adapter was not merged"
    # Merging rewrites weights in place: the cached base model must not have been touched.
    assert generate(model_dir, PROMPTS, max_new_tokens=6) == base_before


def test_merged_adapter_matches_unmerged_peft_model(model_dir, adapter_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged, tokenizer = load_model(model_dir, adapter_dir)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), adapter_dir).eval()
    text = tokenizer.apply_chat_template(PROMPTS[1], add_generation_prompt=True, tokenize=False)
    ids = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        assert torch.allclose(merged(**ids).logits, reference(**ids).logits, atol=1e-4)


def test_empty_and_malformed_prompts(model_dir):
    assert generate(model_dir, []) == []
    with pytest.raises(ValueError, match="prompt 1"):
        generate(model_dir, [PROMPTS[0], [{"content": "no role"}]], max_new_tokens=2)


# --- stop_after_json ----------------------------------------------------------------------------

CHAIN = ["{", "x", "}", "y"]  # what the rewired model writes after the generation prompt, "y" forever


@pytest.fixture(scope="module")
def rambler_dir(tiny_model_dir, tmp_path_factory):
    """The tiny Llama rewired so that its next token depends on the current one alone (attention
    and MLP outputs zeroed; each chain token its own basis vector; lm_head points every chain
    token at its successor): after the generation prompt it writes `{x}` and rambles on with `y`,
    as an untuned model does after its JSON answer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    [start] = tokenizer(tokenizer.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=False),
                        add_special_tokens=False)["input_ids"][-1:]
    chain = [start] + [tokenizer.convert_tokens_to_ids(t) for t in CHAIN]
    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.tie_word_embeddings = False
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for i, (token, successor) in enumerate(zip(chain, chain[1:] + chain[-1:])):
            model.model.embed_tokens.weight[token, i] = 1.0
            model.lm_head.weight[successor, i] = 1.0
    path = tmp_path_factory.mktemp("rambler")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_stop_after_json_ends_each_answer_at_its_closing_brace(rambler_dir):
    prompts = PROMPTS[:3]
    assert generate(rambler_dir, prompts, max_new_tokens=8) == ["{x}yyyyy"] * 3  # the rewiring works
    assert generate(rambler_dir, prompts, max_new_tokens=8, stop_after_json=True) == ["{x}"] * 3


@pytest.mark.parametrize("text, closed", [
    ('{"intent": "refund"}', True),
    ('{"a": {"b": 1}', False),  # the outer object is still open
    ('{"a": {"b": 1}}', True),
    ('{"note": "a } inside a string"', False),
    ('{"note": "an escaped \\" quote }"', False),
    ('{"note": "an escaped \\" quote }"}', True),
    ("} stray closing brace first", False),
    ('Sure! {"intent": "refund"} and more', True),
    ("no object at all", False),
])
def test_closes_object(text, closed):
    assert generation._closes_object(text) is closed


# --- continuation log-probabilities -------------------------------------------------------------

PAIRS = [
    ("hello world, my card was", " charged twice"),
    ("", "refund"),
    ('the answer is {"intent": "billing_dispute", "priority":', ' "high"}'),
    ("please update my address", ""),
    ("insurance", " claim policy status is pending, please"),
]


def token_by_token(model_dir, prefix: str, continuation: str) -> tuple[float, int]:
    """The reference: one unpadded forward pass per continuation token."""
    import torch

    model, tokenizer = load_model(model_dir)
    ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] or [tokenizer.bos_token_id]
    total, targets = 0.0, tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        for target in targets:
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            total += float(torch.log_softmax(logits.float(), dim=-1)[target])
            ids = ids + [target]
    return total, len(targets)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_continuation_logprob_is_the_sum_token_by_token(model_dir, batch_size):
    scores = continuation_logprobs(model_dir, [p for p, _ in PAIRS], [c for _, c in PAIRS], batch_size=batch_size)
    for (prefix, continuation), (logprob, count) in zip(PAIRS, scores):
        expected, expected_count = token_by_token(model_dir, prefix, continuation)
        assert count == expected_count
        assert logprob == pytest.approx(expected, abs=1e-3)
    assert scores[3] == (0.0, 0) and all(lp < 0 for lp, n in scores if n)


def test_continuation_logprobs_see_the_adapter(model_dir, adapter_dir):
    prefixes, continuations = [p for p, _ in PAIRS], [c for _, c in PAIRS]
    base = continuation_logprobs(model_dir, prefixes, continuations)
    tuned = continuation_logprobs(model_dir, prefixes, continuations, adapter_dir=adapter_dir)
    assert [n for _, n in base] == [n for _, n in tuned]
    assert any(abs(a - b) > 1e-3 for (a, _), (b, _) in zip(base, tuned))


def test_continuation_logprobs_progress_and_errors(model_dir):
    calls = []
    continuation_logprobs(model_dir, ["a", "b", "c"], [" x", " y", " z"], batch_size=2,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]
    assert continuation_logprobs(model_dir, [], []) == []
    with pytest.raises(ValueError, match="2 prefixes for 1 continuations"):
        continuation_logprobs(model_dir, ["a", "b"], [" x"])
