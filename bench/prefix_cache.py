"""The fit assessment's generation with and without the shared-prefix cache, in one process, on the
arms' real prompts (zero-shot, few-shot, retrieved few-shot, RAG) from an export folder.

    PYTHONPATH=$PWD .venv/bin/python bench/prefix_cache.py EXPORT_DIR [--model DIR] [--items 48]

EXPORT_DIR: a jsonl_export run folder (after `make demo`: var/data/jsonl_export/<run id>), with its
task.yaml. Baseline: `generate` with sharing switched off (MIN_SHARED_PREFIX past any prompt),
run in the same process after a warm-up, arms alternating which side goes first. Prints per arm
both times and whether every answer is the same; the whole-assessment speed-up is printed last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from ft_pipeline.core.jsonl import iter_jsonl
    from ft_pipeline.core.evaluation import generation
    from ft_pipeline.core.fit import arms
    from ft_pipeline.core.fit.prompts import baseline_system_prompt, label_set
    from ft_pipeline.core.fit.retrieval import load_knowledge
    from ft_pipeline.core.task import TaskConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--model", default=str(REPO / "var/models/smollm2-135m-instruct"))
    parser.add_argument("--items", type=int, default=48)
    args = parser.parse_args()
    task = TaskConfig.from_yaml(args.export_dir / "task.yaml")
    config = task.sections.fit
    train = list(iter_jsonl(args.export_dir / "train.jsonl"))
    test = list(iter_jsonl(args.export_dir / "test.jsonl"))[:args.items]
    labels = label_set(task, train)
    knowledge = load_knowledge(task.knowledge, config.chunk_words, config.overlap_words) if task.knowledge else None
    built = arms.build_arms(task, list(config.arms), train, test, baseline_system_prompt(task, labels),
                            k=config.k(task.few_shot), knowledge=knowledge, rag_chunks=config.rag_chunks)
    budget = {"max_new_tokens": task.max_new_tokens, "stop_after_json": task.type == "structured"}
    generation.generate(args.model, built[next(iter(built))].prompts[:2], **budget)  # load + warm up
    totals = {"plain": 0.0, "shared": 0.0}
    for i, (name, arm) in enumerate(built.items()):
        answers, times = {}, {}
        for side in (("plain", "shared") if i % 2 == 0 else ("shared", "plain")):
            generation.MIN_SHARED_PREFIX = 10**9 if side == "plain" else 16
            start = time.perf_counter()
            answers[side] = generation.generate(args.model, arm.prompts, **budget)
            times[side] = time.perf_counter() - start
            totals[side] += times[side]
        same = sum(a == b for a, b in zip(answers["plain"], answers["shared"]))
        print(f"arm {name:20s} plain {times['plain']:7.1f} s  shared {times['shared']:7.1f} s  "
              f"{times['plain'] / times['shared']:.2f}x  same answers {same}/{len(arm.prompts)}", flush=True)
    print(f"all arms: plain {totals['plain']:.1f} s, shared {totals['shared']:.1f} s: "
          f"speed-up {totals['plain'] / totals['shared']:.2f}x")


if __name__ == "__main__":
    main()
