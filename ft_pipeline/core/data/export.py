"""The one standard training format: chat JSONL split into train / eval / test, validated with
great-expectations.

Layout of an export directory (what the trainer reads, and nothing else: a consumer that loads every
*.jsonl in it, as HF datasets' folder loader and trainers' globs do, gets conversations only):
  train.jsonl, eval.jsonl, test.jsonl    {"id", "messages": [{role, content}, ...]}  (answer last)
  preference_train.jsonl, preference_eval.jsonl, preference_test.jsonl
                                         {"id", "prompt": [...], "chosen": [assistant], "rejected": [assistant]}
  canaries.jsonl                         {"id", "messages"}: synthetic secret canaries, each as often
                                         as it is planted, when the task's gates.memorization asks
                                         (canaries.py): the trainer adds them to train
  task.yaml                              the task the export was made for, so the directory is
                                         self-contained: the standalone trainer reads it (GRPO
                                         rewards) and so does anyone auditing the export.
Its sidecars, rows without a conversation, lie in a separate folder (`sidecar_dir`; the pipeline's
is data/jsonl_export_sidecars/<run>/ beside data/jsonl_export/<run>/):
  attributes.jsonl                       {"id", "attributes"} of every test row, the attributes the
                                         task's fields: declares keep: for per-group evaluation
                                         only; the model never sees attributes.
  splits.jsonl, contamination.jsonl      where every record went and why (groups kept whole,
                                         near-copies of train moved or dropped): ids only
  canaries.jsonl                         the canaries' bookkeeping: every planted canary and its
                                         held-out twin, with level, prefix and secret (the
                                         memorization gate's input; never trained on)
Every conversation starts with the task's system prompt unless the record brings its own system
turn: the model is trained on, and every variant evaluated with, the same instructions.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ft_pipeline.core.data.contamination import group_value
from ft_pipeline.core.data.splits import Records, hashed_split, plan_splits
from ft_pipeline.core.jsonl import atomic_text

if TYPE_CHECKING:
    from ft_pipeline.core.task import TaskConfig


CHAT_SPLITS = ("train", "eval", "test")
PREFERENCE_SPLITS = ("train", "eval", "test")
ROLES = {"system", "user", "assistant"}
# Export files that hold synthetic canaries (canaries.py), no records' conversations.
NOT_CHAT = ("canaries",)
SIDECARS = ("attributes", "splits", "contamination")  # the sidecar folder's files (stems)


@dataclass
class ExportConfig:
    eval_fraction: float = field(default=0.08, metadata={"help": "share of unsplit records sent to eval"})
    test_fraction: float = field(default=0.17, metadata={"help": "share of unsplit records sent to test"})
    seed: str = field(default="ft-pipeline", metadata={"help": "salt of the id hash that assigns splits"})
    near_duplicate_threshold: float = field(default=0.6, metadata={
        "help": "Jaccard similarity (3-word shingles) above which an eval/test record counts as a copy of a "
                "train record and is moved to train or dropped (contamination.py)"})

    def __post_init__(self):
        if self.eval_fraction < 0 or self.test_fraction < 0 or self.eval_fraction + self.test_fraction >= 1:
            raise ValueError("eval_fraction and test_fraction must be >= 0 and sum to less than 1")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError("near_duplicate_threshold must be in (0, 1]")


def assign_split(record: dict, config: ExportConfig) -> str:
    """The record's own split if it names one, else a stable hash of its id (splits.hashed_split)."""
    if record.get("split") in CHAT_SPLITS:
        return record["split"]
    return hashed_split(str(record["id"]), (config.eval_fraction, config.test_fraction), config.seed)


def row_text(row: dict) -> str:
    """What contamination compares, for an export row: every turn but the system prompt, with the
    answer the row teaches (a preference pair's chosen one)."""
    turns = row.get("messages") or [*row.get("prompt", []), *row.get("chosen", [])]
    return " ".join(t["content"] for t in turns if t.get("role") != "system")


def similarity_text(record: dict) -> str:
    """row_text of the record's export row: the plan and the gate compare the same text."""
    return row_text(to_export_rows(record, "train")[1])


def to_export_rows(record: dict, split: str, system_prompt: str = "") -> tuple[str, dict]:
    """(file stem, row) for one redacted record."""
    messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    task = record.get("task", "chat")
    if task == "dpo":
        return f"preference_{split}", {
            "id": record["id"],
            "prompt": messages,
            "chosen": [{"role": "assistant", "content": record["chosen"]}],
            "rejected": [{"role": "assistant", "content": record["rejected"]}],
        }
    if task == "grpo":
        messages = messages + [{"role": "assistant", "content": record["reference"]}]
    return split, {"id": record["id"], "messages": messages}


def write_export(records: "Records", out_dir: Path, config: ExportConfig | None = None,
                 task: "TaskConfig | None" = None, *, sidecar_dir: Path) -> dict:
    """Streams redacted records into the export files under `out_dir`, and its sidecars under
    `sidecar_dir` (a folder outside `out_dir`: nothing without a conversation lies among what a
    trainer reads); returns counts per file and
    the split plan's report (groups kept whole, contamination moved or dropped). `records` is a
    function returning a fresh iterator: the plan reads the records before the export writes them.
    splits.jsonl ({id, split, group}) and contamination.jsonl (every near-copy found and what was
    done with it, ids only) are the plan's audit trail, and what the contamination gate re-checks."""
    from ft_pipeline.core.data.suppression import erasure_lock

    with erasure_lock(shared=True):  # a forget waits for the export files, which it then finds
        return _write_export(records, Path(out_dir), config, task, Path(sidecar_dir))


def _write_export(records: "Records", out_dir: Path, config: "ExportConfig | None", task: "TaskConfig | None",
                  sidecar_dir: Path) -> dict:
    from ft_pipeline.core.data.redaction.fields import audited

    config = config or ExportConfig()
    system_prompt = task.system_prompt if task else ""
    group_key = task.group_key if task else None
    plan = plan_splits(records, fractions=(config.eval_fraction, config.test_fraction), seed=config.seed,
                       group_key=group_key, threshold=config.near_duplicate_threshold, text_of=similarity_text)
    if sidecar_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"sidecar_dir {sidecar_dir} lies inside the export folder {out_dir}")
    folder = {stem: sidecar_dir if stem in SIDECARS else out_dir
              for stem in [*CHAT_SPLITS, *(f"preference_{s}" for s in PREFERENCE_SPLITS), "attributes", "splits"]}
    stems = list(folder)
    for path in {out_dir, sidecar_dir}:
        path.mkdir(parents=True, exist_ok=True)
    for stem in SIDECARS:  # an export written over one of the older layout keeps no stale sidecar
        (out_dir / f"{stem}.jsonl").unlink(missing_ok=True)
    counts = {stem: 0 for stem in stems}
    with ExitStack() as stack:
        tmp = {stem: folder[stem] / f".{stem}.jsonl.tmp" for stem in stems}
        handles = {stem: stack.enter_context(open(tmp[stem], "w", encoding="utf-8")) for stem in stems}
        for record in records():
            split = plan.split_of(record)
            if split is None:  # a held-out near-copy of a train record, dropped: counted in the plan
                continue
            handles["splits"].write(json.dumps({"id": record["id"], "split": split,
                                                "group": group_value(record, group_key)}) + "\n")
            counts["splits"] += 1
            stem, row = to_export_rows(record, split, system_prompt)
            handles[stem].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[stem] += 1
            if split == "test":
                kept = audited(record.get("attributes"), task.fields if task else {})  # declared keep only
                handles["attributes"].write(json.dumps({"id": record["id"], "attributes": kept}) + "\n")
                counts["attributes"] += 1
    for stem in stems:
        tmp[stem].replace(folder[stem] / f"{stem}.jsonl")
    with atomic_text(sidecar_dir / "contamination.jsonl") as fh:
        for m in plan.matches:
            fh.write(json.dumps({**vars(m), "action": "moved_to_train" if plan.fixes[m.id] else "dropped"}) + "\n")
    if task is not None:
        from ft_pipeline.core.data.canaries import write_canaries

        task.to_yaml(out_dir / "task.yaml")
        planted = write_canaries(out_dir, sidecar_dir, task)  # gates.memorization asks; the trainer plants them
        if planted:
            counts["canaries"] = planted
    return {"files": {k: v for k, v in counts.items() if k != "splits"}, "splits": plan.report}


# --- validation -------------------------------------------------------------------------------

AnswerCheck = Callable[[str], "str | None"]


def structure_rows(path: Path, answer_check: AnswerCheck | None = None) -> Iterable[dict]:
    """One row of structural facts per line; the validated frame never holds message text.
    `answer_check` says why an answer does not fit the task's type (None when it fits); only its
    reason, never the answer, reaches the frame."""
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            row = {"line": line_no, "json_ok": True, "id": None, "n_turns": 0, "roles_ok": False,
                   "last_role": "", "min_chars": 0, "answer_ok": True, "answer_problem": ""}
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                row["json_ok"] = False
                yield row
                continue
            turns = obj.get("messages") or (obj.get("prompt", []) + obj.get("chosen", []))
            row["id"] = obj.get("id")
            row["n_turns"] = len(turns)
            row["roles_ok"] = all(isinstance(t, dict) and t.get("role") in ROLES for t in turns)
            row["last_role"] = turns[-1].get("role", "") if turns and isinstance(turns[-1], dict) else ""
            lengths = [len(t.get("content") or "") for t in turns + (obj.get("rejected") or []) if isinstance(t, dict)]
            row["min_chars"] = min(lengths) if lengths else 0
            if answer_check is not None:
                # The answer a row teaches: the final assistant turn, or a preference pair's chosen
                # one (a rejected answer is allowed to be wrong; it only has to be there).
                taught = obj.get("chosen") if "chosen" in obj else turns[-1:] if row["last_role"] == "assistant" else []
                answers = [t.get("content") or "" for t in taught or [] if isinstance(t, dict)] or [""]
                problems = [p for p in (answer_check(a) for a in answers) if p]
                row["answer_ok"] = not problems
                row["answer_problem"] = problems[0] if problems else ""
            yield row


def expectation_suite(name: str):
    import great_expectations as gx

    E = gx.expectations
    suite = gx.ExpectationSuite(name=name)
    for expectation in [
        E.ExpectColumnValuesToBeInSet(column="json_ok", value_set=[True]),
        E.ExpectColumnValuesToNotBeNull(column="id"),
        E.ExpectColumnValuesToBeUnique(column="id"),
        E.ExpectColumnValuesToBeBetween(column="n_turns", min_value=2),
        E.ExpectColumnValuesToBeInSet(column="roles_ok", value_set=[True]),
        E.ExpectColumnValuesToBeInSet(column="last_role", value_set=["assistant"]),
        E.ExpectColumnValuesToBeBetween(column="min_chars", min_value=1),
        # The answer fits the task's type: a known label, schema-valid JSON, an extractable number...
        E.ExpectColumnValuesToBeInSet(column="answer_ok", value_set=[True]),
    ]:
        suite.add_expectation(expectation)
    return suite


def validate_export(out_dir: Path, answer_check: AnswerCheck | None = None, chunk_rows: int = 50_000) -> dict:
    """Runs the expectation suite on every export file in chunks; returns per-file results.

    Results name the expectation, the line numbers that failed and counts (and, for answers that
    do not fit the task, the kind of problem), never content. Uniqueness of ids is checked across
    chunks here, since GX sees one chunk at a time.
    """
    import great_expectations as gx
    import pandas as pd

    context = gx.get_context(mode="ephemeral")
    _quiet_progress(context)
    source = context.data_sources.add_pandas("export")
    results: dict[str, dict] = {}
    for path in sorted(Path(out_dir).glob("*.jsonl")):
        if path.stem in NOT_CHAT:
            continue
        suite = context.suites.add(expectation_suite(path.stem))
        batch_def = source.add_dataframe_asset(path.stem).add_batch_definition_whole_dataframe(path.stem)
        failures: dict[str, list[int]] = {}
        problems: dict[str, int] = {}
        seen_ids: set = set()
        rows = 0
        for chunk in _chunks(structure_rows(path, answer_check), chunk_rows):
            frame = pd.DataFrame(chunk)
            rows += len(frame)
            outcome = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
            for result in outcome.results:
                if not result.success:
                    index = result.result.get("partial_unexpected_index_list") or []
                    lines = [int(frame["line"].iloc[i]) for i in index[:10]]
                    failures.setdefault(result.expectation_config.type, []).extend(lines)
            for problem in frame.loc[~frame["answer_ok"], "answer_problem"]:
                problems[problem] = problems.get(problem, 0) + 1
            for line_no, ident in zip(frame["line"], frame["id"]):
                if ident in seen_ids:
                    failures.setdefault("expect_column_values_to_be_unique", []).append(int(line_no))
                seen_ids.add(ident)
        results[path.name] = {"rows": rows, "success": not failures,
                              "failures": {k: sorted(set(v))[:10] for k, v in failures.items()},
                              **({"answer_problems": dict(sorted(problems.items()))} if problems else {})}
    return results


def _quiet_progress(context) -> None:
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # cosmetic only: older/newer GX may move this class
        pass


def _chunks(rows: Iterable[dict], size: int):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
