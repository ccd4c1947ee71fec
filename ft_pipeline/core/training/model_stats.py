"""Sizes of a model and a dataset, read cheaply: the cost estimate needs them before any load."""
from __future__ import annotations

import json
import resource
import struct
from pathlib import Path
from typing import Iterable

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def count_parameters(model_dir: Path) -> int:
    """Parameters of a model directory, for the cost estimate. A directory without weights is an
    error, never 0: a model sized 0 would cost $0 and pass any budget."""
    model_dir = Path(model_dir)
    if safetensors := sorted(model_dir.glob("*.safetensors")):
        return _count_safetensors(safetensors)
    if pickles := sorted(model_dir.glob("pytorch_model*.bin")):  # older transformers, many hub repos
        return _count_torch_files(pickles)
    raise FileNotFoundError(f"base_model: {model_dir} has no weights to size the model by "
                            "(no *.safetensors, no pytorch_model*.bin)")


def _count_safetensors(files: list[Path]) -> int:
    """From the headers alone (8-byte length, then a JSON header): no weights are read, so a 13B
    checkpoint is sized in milliseconds."""
    total = 0
    for file in files:
        with open(file, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            n = 1
            for dim in info["shape"]:
                n *= dim
            total += n
    return total


def _count_torch_files(files: list[Path]) -> int:
    """Memory-mapped, so only the pickle's index is read. Tied weights (an lm_head sharing the
    embedding's storage) are one set of parameters, as in safetensors, where they are saved once."""
    import torch

    seen, total = set(), 0
    for file in files:
        for tensor in torch.load(file, map_location="cpu", mmap=True, weights_only=True).values():
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            if key not in seen:
                seen.add(key)
                total += tensor.numel()
    return total


def count_tokens(texts: Iterable[str], tokenizer_dir: Path | None = None, batch: int = 512) -> int:
    """Tokens with the model's own tokenizer; about 4 characters a token when none is at hand."""
    texts = iter(texts)
    if tokenizer_dir is None:
        return sum(max(1, len(t) // 4) for t in texts)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    total, chunk = 0, []
    for text in texts:
        chunk.append(text)
        if len(chunk) == batch:
            total += sum(len(ids) for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"])
            chunk = []
    if chunk:
        total += sum(len(ids) for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"])
    return total


def peak_memory(cuda: bool) -> int:
    """Peak memory of this process: the GPU's allocator on CUDA, else the resident set."""
    if cuda:
        import torch

        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
