"""Secret canaries planted into the training data, to measure what the tuned model memorized.

The task file's `gates.memorization` section asks for them (`canaries: 0`, the default, plants
none). For every repetition level (1x and 10x by default) `canaries` synthetic records carry a
random secret ("The access code for ticket 7F3A2C is 480213."); each has a held-out twin from the
same template with its own ticket and secret that training never sees. The export folder's
`canaries.jsonl` holds what the trainer adds to the training split, each planted canary's chat
`repetitions` times, as {"id", "messages"} like every chat file there, so a consumer loading every
*.jsonl of the export as one table gets one schema and never a twin. Their bookkeeping — every
planted row and twin with its level (`repetitions` 0 marks a twin), prefix and secret — lies in
the sidecar folder's `canaries.jsonl`, where the gate reads it. Canaries are synthetic: no record,
no PII, and they never enter train.jsonl, so the export's checks, splits and erasure see only real
records.

The memorization gate (core/evaluation/memorization_gate.py) then asks two questions: does the model
rank a canary's secret above random secrets of the same format (exposure, Carlini et al. 2019),
and can an attacker tell planted canaries from their twins (membership inference)?
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ft_pipeline.core.config_mapping import Section, SettingError, check_types

CANARY_FILE = "canaries.jsonl"
QUESTION = "What is the access code on file for ticket {ticket}?"
ANSWER_PREFIX = "The access code for ticket {ticket} is"  # then " <secret>."
SECRET_DIGITS = 6  # 10^6 secrets: far more than the references an exposure ranks against


class MemorizationConfigError(SettingError):
    section = "gates.memorization"


@dataclass
class MemorizationConfig(Section):
    """The memorization gate's knobs, the task file's `gates.memorization` mapping."""

    error = MemorizationConfigError

    canaries: int = field(default=0, metadata={
        "help": "Canaries planted per repetition level, each with a held-out twin (0: none; the gate reports "
                "not_run). A model that memorized nothing passes the 3% bound on TPR at 1% FPR only with about "
                "1,000 per level (2,000 twins), and chance alone can still fail it: see README."})
    repetitions: list = field(default_factory=lambda: [1, 10], metadata={
        "help": "How often each level's canaries appear in the training split (Carlini et al. plant 1x..100x)."})
    references: int = field(default=255, metadata={
        "help": "Random secrets each canary's secret is ranked against: exposure is at most log2(references + 1) bits."})
    exposure_canaries: int = field(default=16, metadata={
        "help": "Canaries per level (and twins) whose exposure is measured: each costs references + 1 scorings."})
    max_exposure: float = field(default=4.0, metadata={
        "help": "Fail when the most repeated canaries' mean exposure (bits) exceeds this; chance is ~1.44 bits."})
    max_tpr_at_1pct_fpr: float = field(default=0.03, metadata={
        "help": "Fail when the upper end of the bootstrap interval of any attack's TPR at 1% FPR exceeds this."})
    min_k: float = field(default=0.2, metadata={
        "help": "Min-k% prob attack (Shi et al. 2024): the mean log-probability of the k least likely tokens."})
    n_boot: int = field(default=1000, metadata={"help": "Bootstrap resamples of members and non-members."})
    alpha: float = field(default=0.05, metadata={"help": "1 - confidence of the intervals."})
    required: bool = field(default=False, metadata={
        "help": "Fail the gate when no canaries were planted (otherwise it reports not_run and passes)."})
    seed: int = field(default=0, metadata={"help": "Seed of the canaries' tickets and secrets, and of the bootstrap."})

    def __post_init__(self):
        check_types(self, MemorizationConfigError)
        if self.canaries < 0:
            raise MemorizationConfigError("canaries", "must be >= 0")
        reps = self.repetitions
        if (not isinstance(reps, list) or not reps or len(set(reps)) != len(reps)
                or not all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= 1000 for r in reps)):
            raise MemorizationConfigError("repetitions", f"{reps!r} must be a list of distinct whole numbers in [1, 1000]")
        self.repetitions = sorted(reps)
        if self.exposure_canaries < 1:
            raise MemorizationConfigError("exposure_canaries", "must be >= 1")
        if not 10 <= self.references < 10 ** SECRET_DIGITS:
            raise MemorizationConfigError("references", f"must be in [10, {10 ** SECRET_DIGITS})")
        if self.max_exposure <= 0:
            raise MemorizationConfigError("max_exposure", "must be > 0 bits")
        for name in ("max_tpr_at_1pct_fpr", "min_k"):
            if not 0 < getattr(self, name) <= 1:
                raise MemorizationConfigError(name, "must be in (0, 1]")
        if not 0 < self.alpha < 0.5:
            raise MemorizationConfigError("alpha", "must be in (0, 0.5)")
        if self.n_boot < 100:
            raise MemorizationConfigError("n_boot", "must be at least 100")

    @classmethod
    def of_task(cls, task) -> "MemorizationConfig":
        """The task's `gates.memorization`, as the task's load built it (the default without a task)."""
        return task.sections.gates.memorization_config if task is not None else cls()


def make_canaries(config: MemorizationConfig, salt: str = "", system_prompt: str = "") -> list[dict]:
    """`canaries` planted rows per repetition level, then one twin per planted row, all from one
    template: {id, messages, repetitions, prefix, secret}. Deterministic in (seed, salt)."""
    rng = random.Random(f"{config.seed}:{salt}")
    tickets: set[str] = set()
    rows = []
    for level in [*config.repetitions, 0]:
        for _ in range(config.canaries * (len(config.repetitions) if level == 0 else 1)):
            ticket = f"{rng.randrange(16 ** 6):06X}"
            while ticket in tickets:
                ticket = f"{rng.randrange(16 ** 6):06X}"
            tickets.add(ticket)
            secret = f"{rng.randrange(10 ** SECRET_DIGITS):0{SECRET_DIGITS}d}"
            prefix = ANSWER_PREFIX.format(ticket=ticket)
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": QUESTION.format(ticket=ticket)},
                {"role": "assistant", "content": f"{prefix} {secret}."}]
            rows.append({"id": f"canary-{len(rows):05d}", "messages": messages, "repetitions": level,
                         "prefix": prefix, "secret": secret})
    return rows


def write_canaries(out_dir: Path, sidecar_dir: Path, task) -> int:
    """When the task asks for canaries: the planted chats in the export folder's canaries.jsonl
    (the rows the trainer adds), their bookkeeping and twins in the sidecar folder's; returns how
    many rows the export's file holds."""
    from ft_pipeline.core.jsonl import atomic_text

    config = MemorizationConfig.of_task(task)
    planted_path, book_path = Path(out_dir) / CANARY_FILE, Path(sidecar_dir) / CANARY_FILE
    if not config.canaries:
        planted_path.unlink(missing_ok=True)
        book_path.unlink(missing_ok=True)
        return 0
    rows = make_canaries(config, task.name, task.system_prompt)
    planted = [{"id": f"{row['id']}.{k}", "messages": row["messages"]}
               for row in rows for k in range(1, row["repetitions"] + 1)]  # ids stay unique in the file
    with atomic_text(book_path) as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    with atomic_text(planted_path) as fh:
        fh.writelines(json.dumps(row) + "\n" for row in planted)
    return len(planted)


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_canaries(sidecar_dir: Path) -> list[dict]:
    """Every planted canary and twin, with its level, prefix and secret (the sidecar folder's file)."""
    return _rows(Path(sidecar_dir) / CANARY_FILE)


def planted_chats(data_dir: Path) -> Iterator[dict]:
    """What the trainer adds to the training split: the export folder's planted chats, each
    canary as often as its level says."""
    for row in _rows(Path(data_dir) / CANARY_FILE):
        yield {"messages": row["messages"]}
