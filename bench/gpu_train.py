"""GPU training benchmark: the project's LoRA trainer on a random ~1.1B Llama, bf16.

    python bench/gpu_train.py                # on a GPU: ~1.1B model, 30 steps, packed and unpacked
    python bench/gpu_train.py --tiny         # anywhere: a 2-layer model, to check the script runs

The model is randomly initialised with TinyLlama-1.1B's shape (hidden 2048, 22 layers, GQA 32/4
heads, vocab 32,000), so nothing is downloaded; speed does not depend on the weights. The data
is synthetic chat in the export format with lengths spread over 64..1024 tokens, the spread that
makes padding expensive. Reports per run: tokens/s (non-padding), peak GPU memory, and MFU:

    MFU = 6 * N_params * tokens/s / peak FLOP/s   (H100/H200: 989e12 dense bf16)

6N is the same convention cost.py uses, so the MFU here checks cost.py's assumed MFU directly
(LoRA really does ~4N: no weight gradients for the frozen base; 4N-MFU = 2/3 of the figure).
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}
VOCAB = 32000
SPECIALS = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
)


def build_model(path: Path, shape: str) -> int:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    # A word-level vocabulary "w0".."wN": every synthetic word is exactly one token.
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    vocab.update({f"w{i}": len(SPECIALS) + i for i in range(VOCAB - len(SPECIALS))})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=2048, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3, **SHAPES[shape])
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def build_export(root: Path, n: int, max_len: int) -> None:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "train.jsonl", "w") as fh:
        for i in range(n):
            length = rng.randint(max_len // 16, max_len - 24)  # the template adds ~10 tokens
            words = " ".join(f"w{rng.randrange(VOCAB - 4)}" for _ in range(length))
            answer = " ".join(f"w{rng.randrange(VOCAB - 4)}" for _ in range(8))
            fh.write(json.dumps({"id": str(i), "messages": [{"role": "user", "content": words},
                                                            {"role": "assistant", "content": answer}]}) + "\n")


def main() -> int:
    import torch

    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.cost import PEAK_FLOPS
    from ft_pipeline.core.training.train import train

    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="2-layer model, fp32 on CPU: a smoke run")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--gpu-type", default="H200", help="peak FLOP/s row of cost.PEAK_FLOPS for MFU")
    opts = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not opts.tiny:
        print(json.dumps({"error": "no CUDA device; run with --tiny for a CPU smoke run"}))
        return 2
    shape = "tiny" if opts.tiny else "1b"
    precision = "bf16" if cuda else "fp32"
    peak = PEAK_FLOPS[opts.gpu_type if cuda else "cpu"]
    results = {"device": torch.cuda.get_device_name() if cuda else "cpu", "shape": shape, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = Path(tmp) / "model", Path(tmp) / "export"
        n_params = build_model(model_dir, shape)
        build_export(data, n=opts.steps * opts.batch * 2, max_len=opts.max_length)
        results["n_params"] = n_params
        for packing in (False, True):
            config = TrainingConfig(
                base_model=str(model_dir), max_steps=opts.steps, per_device_batch_size=opts.batch,
                max_length=opts.max_length, packing=packing, precision=precision, lora_rank=16, lora_alpha=32,
                logging_steps=opts.steps, save_steps=10**6, assistant_only_loss=True,
            )
            m = train(config, data, Path(tmp) / f"out-{packing}")
            tps = m["tokens_per_s"]
            results["runs"].append({
                "packing": packing,
                "tokens_per_s": round(tps, 1),
                "train_seconds": round(m["train_seconds"], 2),
                "train_tokens": m["train_tokens"],
                "peak_memory_gb": round(m["peak_memory_bytes"] / 2**30, 2),
                "mfu_6n": round(6 * n_params * tps / peak, 4),
                "final_loss": m["final_loss"],
            })
    unpacked, packed = results["runs"]
    results["packing_gain"] = round(packed["tokens_per_s"] / unpacked["tokens_per_s"], 3)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
