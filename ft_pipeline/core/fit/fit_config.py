"""The fit assessment's knobs: the task file's `fit:` mapping (validated like `gates:`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ft_pipeline.core.config_mapping import Section, SettingError, check_types

ARMS = ("zero_shot", "few_shot", "retrieved_few_shot", "rag")


class FitConfigError(SettingError):
    section = "fit"


@dataclass
class FitConfig(Section):
    error = FitConfigError

    arms: list = field(default_factory=lambda: list(ARMS), metadata={
        "help": "Cheaper alternatives to measure: zero_shot (the system prompt and answer instructions), "
                "few_shot (k fixed training examples), retrieved_few_shot (the k training examples most like "
                "the question, BM25), rag (the k knowledge chunks most like it; only when `knowledge` is set)."})
    shots: int = field(default=0, metadata={
        "help": "k for the few-shot arms (0: the task's few_shot, else 3)."})
    rag_chunks: int = field(default=3, metadata={"help": "Knowledge chunks put in the RAG arm's prompt."})
    chunk_words: int = field(default=120, metadata={"help": "Words per knowledge chunk (paragraphs kept whole)."})
    overlap_words: int = field(default=20, metadata={"help": "Overlap of the windows a long paragraph is cut into."})
    max_items: int = field(default=0, metadata={
        "help": "Held-out items every arm (and later the evaluation) answers (0: the whole test split)."})
    alpha: float = field(default=0.05, metadata={
        "help": "1 - confidence of each arm's interval; an arm reaches the target when its interval's lower "
                "end does."})
    usd_per_million_tokens: float = field(default=0.20, metadata={
        "help": "Serving price per million tokens (prompt + answer) of the model the arms run on."})
    amortize_months: int = field(default=12, metadata={
        "help": "Months the one-off training cost is spread over in the fine-tune option's monthly cost."})
    pilot: bool = field(default=False, metadata={
        "help": "Train short pilots on a quarter and on half of the training set (SFT only) and score them, "
                "to tell whether more data or steps would likely reach the target."})
    pilot_items: int = field(default=32, metadata={"help": "Held-out items each pilot adapter answers."})
    pilot_steps: int = field(default=0, metadata={
        "help": "Optimizer steps of the half-data pilot (the quarter pilot trains half as many); "
                "0: the planned run's steps scaled to the data share."})

    def __post_init__(self):
        check_types(self, FitConfigError)
        for name in ("shots", "rag_chunks", "chunk_words", "overlap_words", "max_items", "pilot_items", "pilot_steps"):
            if getattr(self, name) < 0:
                raise FitConfigError(name, f"{getattr(self, name)!r} must be >= 0")
        if not isinstance(self.arms, list) or not self.arms:
            raise FitConfigError("arms", "must be a non-empty list of " + ", ".join(ARMS))
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise FitConfigError("arms", f"{unknown[0]!r} is not an arm; known: " + ", ".join(ARMS))
        if "zero_shot" not in self.arms:
            raise FitConfigError("arms", "must include zero_shot: the prompt-only baseline every release is gated against")
        if not 0 < self.alpha < 0.5:
            raise FitConfigError("alpha", f"{self.alpha} must be in (0, 0.5)")
        if self.usd_per_million_tokens < 0:
            raise FitConfigError("usd_per_million_tokens", "must be >= 0")
        if self.amortize_months < 1:
            raise FitConfigError("amortize_months", "must be at least 1")
        if self.rag_chunks < 1:
            raise FitConfigError("rag_chunks", "must be at least 1")
        if not 0 <= self.overlap_words < self.chunk_words:
            raise FitConfigError("overlap_words", "must be >= 0 and below chunk_words")

    def k(self, task_few_shot: int) -> int:
        return self.shots or task_few_shot or 3
