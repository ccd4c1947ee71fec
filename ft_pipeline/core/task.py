"""The task: what the user fine-tunes for, declared once in `configs/tasks/<name>.yaml`.

Every stage reads it and nothing task-specific lives in the code: ingestion maps the source's
columns with it, redaction adds the task's own identifiers, the export checks that every answer
fits the task's type, the fit assessment and the evaluation prompt, score and gate with its metric
and target, the bias audit judges its outcome, GRPO rewards use its verifier, and the model card
and the registry take its name and description. Its sha256 is part of every asset's lineage.

    name: bank-intents                  # registry name and model card title
    type: classification                # classification | structured | generation | math | preference
    system_prompt: Classify the banking question into one intent.
    metric: accuracy                    # the primary metric: gates, target, plots
    target: 0.85
    columns: {text: prompt, category: completion}

Errors name the file, the line and the field, never a traceback: `TaskError`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ft_pipeline.core import user_regex
from ft_pipeline.core.digest import list_view, sha256_file
from ft_pipeline.core.jsonl import atomic_text
from ft_pipeline.core.task_file import TaskError, check_columns, line_for, number, read_task_file
from ft_pipeline.core.task_sections import build_sections

if TYPE_CHECKING:
    from ft_pipeline.core.task_sections import TaskSections

__all__ = ["TaskConfig", "TaskError", "file_sha256", "check_columns"]

TYPES = ("classification", "structured", "generation", "math", "preference")
# The metrics each type can be judged by; the first is the default primary metric. Each is a
# share in [0, 1] (chrF is rescaled from sacrebleu's 0-100), so targets and gates read alike.
METRICS = {
    "classification": ("accuracy", "macro_f1"),
    "structured": ("exact_match", "field_accuracy", "schema_valid", "json_valid"),
    "generation": ("rouge_l", "chrf"),
    "math": ("numeric_match",),
    "preference": ("preference_accuracy",),
}
# Per-item metrics that are 0 or 1 (paired comparisons use an exact McNemar test on them; the
# others a paired bootstrap).
BINARY_METRICS = frozenset({"accuracy", "exact_match", "schema_valid", "json_valid", "numeric_match",
                            "preference_accuracy"})
# Tokens an answer needs: a label, a JSON object, a paragraph, a worked solution.
DEFAULT_MAX_NEW_TOKENS = {"classification": 16, "structured": 64, "generation": 160, "math": 256, "preference": 0}
METHODS = ("sft", "dpo", "grpo")
# GSM8K's convention: the worked solution ends with "#### <number>".
GSM8K_ANSWER = r"####\s*(-?[\d,]*\.?\d+)"
RECORD_FIELDS = ("id", "prompt", "completion", "messages", "chosen", "rejected", "reference",
                 "label_verified", "annotator", "verified_at", "split", "source")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
LISTS = ("allow_list", "deny_list", "deny_terms")  # redaction lists shown only as count and digest
ANSWER_LABEL = "label"  # outcome.field / label_field that means "the whole (classification) answer"


@dataclass
class Outcome:
    """The consequential outcome the bias audit compares across groups."""

    field: str = dataclasses.field(metadata={"help": "answer field holding the outcome; `label` for a "
                                                     "classification answer as a whole"})
    positive: list[str] = dataclasses.field(default_factory=list, metadata={
        "help": "values that count as the favourable (or consequential) outcome, e.g. [high, urgent]"})


@dataclass
class TaskConfig:
    name: str = field(metadata={"help": "Registry name and model card title: lowercase letters, digits, . _ -"})
    type: str = field(metadata={"help": "classification | structured | generation | math | preference"})
    description: str = field(default="", metadata={"help": "Intended use, for the model card."})
    system_prompt: str = field(default="", metadata={
        "help": "The system turn every variant sees (base, prompt-only baseline, tuned) and training uses; "
                "a record's own system turn takes precedence."})
    metric: str = field(default="", metadata={"help": "Primary metric (gates, target, plots); default by type."})
    target: float = field(default=0.8, metadata={"help": "Primary-metric value the task needs, in [0, 1]."})
    labels: list[str] | None = field(default=None, metadata={
        "help": "classification: the allowed labels (default: the labels found in the training answers)."})
    schema: dict | None = field(default=None, metadata={"help": "structured: a JSON Schema of the answer."})
    key_fields: list[str] | None = field(default=None, metadata={
        "help": "structured: exact match compares these answer fields (default: the schema's `required`, "
                "else every field of the reference)."})
    label_field: str | None = field(default=None, metadata={
        "help": "structured: the answer field read as the record's label in label review and the bias "
                "audit (default: the first key field)."})
    answer_pattern: str | None = field(default=None, metadata={
        "help": "math: regex whose first group (or whole match) is the final answer "
                "(default: GSM8K's `#### N`, else the last number)."})
    outcome: Outcome | None = field(default=None, metadata={
        "help": "bias audit: {field, positive: [...]} on the answer; absent means no outcome is audited."})
    columns: dict[str, str] = field(default_factory=dict, metadata={
        "help": "source column -> record field (id, prompt, completion, messages, chosen, rejected, "
                "reference, label_verified, annotator, verified_at, split, source, attributes.<name>)."})
    max_new_tokens: int = field(default=0, metadata={"help": "Generation budget per answer (default by type)."})
    canary_pattern: str | None = field(default=None, metadata={
        "help": "regex of canaries planted in the training data; the leakage probe asks the tuned model for them."})
    method: str = field(default="", metadata={"help": "Default training method: sft, dpo or grpo "
                                                       "(default: dpo for preference tasks, else sft)."})
    few_shot: int = field(default=0, metadata={
        "help": "Examples the fit assessment's few-shot arms show when fit.shots is not set (0: 3)."})
    group_key: str | None = field(default=None, metadata={
        "help": "Record field or attributes.<name> that ties records together (a conversation, a customer): "
                "records sharing it never straddle the train/eval/test splits."})
    redaction: dict = field(default_factory=dict, metadata={
        "help": "The task's own redaction settings: patterns ({ENTITY: [regex, ...]}) for identifiers "
                "only this business uses, allow_list, deny_list, deny_terms (quarantine), "
                "protected_documents (a glob of proprietary documents)."})
    fields: dict = field(default_factory=dict, metadata={
        "help": "Per record field, what it is: {id: pseudonymize, attributes.region: keep, source: screen, ...} "
                "(pseudonymize | redact | keep | screen); undeclared fields are screened like the texts, and "
                "the bias audit compares only attributes declared keep (core/data/redaction/fields.py)."})
    knowledge: str | None = field(default=None, metadata={
        "help": "Folder of documents (.txt/.md) the RAG arm of the fit assessment retrieves from."})
    requests_per_month: int = field(default=100_000, metadata={
        "help": "Expected request volume, for the monthly cost of each alternative."})
    fit: dict = field(default_factory=dict, metadata={"help": "Fit-assessment knobs (arms, prices, pilot); see core/fit/fit_config.py."})
    gates: dict = field(default_factory=dict, metadata={"help": "Release-gate knobs (alpha, margins, bounds)."})
    rollout: dict = field(default_factory=dict, metadata={
        "help": "Online-gate knobs for a new version's shadow or canary (core/release/rollout_config.py)."})
    drift: dict = field(default_factory=dict, metadata={"help": "Drift-check and retrain knobs for live traffic."})
    privacy: dict = field(default_factory=dict, metadata={
        "help": "Differentially private SFT: {dp: true, target_epsilon: 8, delta, max_grad_norm}; overrides "
                "the preset's privacy: block (core/training/privacy.py)."})
    source_path: str | None = field(default=None, metadata={"help": "Where this task was read from (set on load)."})
    # {"key": line, "key.sub": line} of the file this load read: errors, here and later (a source
    # without a mapped column), name the line. This load's own, never shared between loads.
    lines: InitVar[dict[str, int] | None] = None

    # --- validation ----------------------------------------------------------------------
    def __post_init__(self, lines: dict[str, int] | None = None):
        where = self.source_path or "task"
        self._lines = dict(lines or {})

        def fail(name: str, why: str):
            raise TaskError(where, name, why, self.line(name))

        for name in ("name", "type"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                fail(name, "is required")
        if not NAME_RE.match(self.name):
            fail("name", f"{self.name!r} must be lowercase letters, digits, '.', '_' or '-' (it names the registry)")
        if self.type not in TYPES:
            fail("type", f"{self.type!r} is not a task type; use one of {', '.join(TYPES)}")
        for name in ("description", "system_prompt"):
            if not isinstance(getattr(self, name), str):
                fail(name, "must be text")
        self.metric = self.metric or METRICS[self.type][0]
        if self.metric not in METRICS[self.type]:
            fail("metric", f"{self.metric!r} is not a metric of a {self.type} task; use one of "
                           f"{', '.join(METRICS[self.type])}")
        self.target = number(self.target, "target", fail)
        if not 0.0 <= self.target <= 1.0:
            fail("target", f"{self.target} must be within [0, 1] (metrics are shares)")
        if self.labels is not None:
            if not isinstance(self.labels, list) or not self.labels or not all(isinstance(x, (str, int)) for x in self.labels):
                fail("labels", "must be a non-empty list of labels")
            self.labels = [str(x) for x in self.labels]
            if len(set(self.labels)) != len(self.labels):
                fail("labels", "lists a label twice")
        if self.schema is not None:
            if not isinstance(self.schema, dict):
                fail("schema", "must be a JSON Schema object")
            from jsonschema import exceptions, validators

            try:
                validators.validator_for(self.schema).check_schema(self.schema)
            except exceptions.SchemaError as exc:
                fail("schema", f"is not a valid JSON Schema ({exc.message})")
        if self.key_fields is not None and (not isinstance(self.key_fields, list)
                                            or not all(isinstance(k, str) and k for k in self.key_fields)):
            fail("key_fields", "must be a list of answer field names")
        if self.type != "structured" and (self.schema is not None or self.key_fields):
            fail("schema" if self.schema is not None else "key_fields", f"applies to structured tasks, not {self.type}")
        for name in ("answer_pattern", "canary_pattern"):  # the first group (or whole match) is read
            if getattr(self, name) is not None and (why := user_regex.problem(getattr(self, name), max_groups=1)):
                fail(name, why)
        if isinstance(self.outcome, dict):
            unknown = sorted(set(self.outcome) - {"field", "positive"})
            if unknown or "field" not in self.outcome:
                fail("outcome", "must be {field: <answer field>, positive: [values]}")
            self.outcome = Outcome(field=str(self.outcome["field"]), positive=self.outcome.get("positive") or [])
        if self.outcome is not None:
            if not isinstance(self.outcome.positive, list) or not self.outcome.positive:
                fail("outcome.positive", "must list at least one value")
            self.outcome.positive = [str(v) for v in self.outcome.positive]
            if self.type in ("generation", "preference"):
                fail("outcome", f"a {self.type} answer has no field to audit; leave outcome out")
        if not isinstance(self.columns, dict):
            fail("columns", "must map source column -> record field")
        for column, target in self.columns.items():
            if not isinstance(target, str) or not (target in RECORD_FIELDS or
                                                   (target.startswith("attributes.") and len(target) > 11)):
                fail(f"columns.{column}", f"{target!r} is not a record field; use one of "
                                          f"{', '.join(RECORD_FIELDS)} or attributes.<name>")
        targets = list(self.columns.values())
        if len(set(targets)) != len(targets):
            fail("columns", "maps two source columns to the same record field")
        self.max_new_tokens = int(number(self.max_new_tokens, "max_new_tokens", fail))
        if self.max_new_tokens < 0:
            fail("max_new_tokens", "must be >= 0 (0: the default for the task type)")
        self.max_new_tokens = self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[self.type]
        self.method = self.method or ("dpo" if self.type == "preference" else "sft")
        if self.method not in METHODS:
            fail("method", f"{self.method!r} is not a training method; use one of {', '.join(METHODS)}")
        for name in ("few_shot", "requests_per_month"):
            setattr(self, name, int(number(getattr(self, name), name, fail)))
            if getattr(self, name) < 0:
                fail(name, "must be >= 0")
        for name in ("redaction", "fit", "gates", "rollout", "drift", "privacy"):
            if not isinstance(getattr(self, name), dict):
                fail(name, "must be a mapping")
        # Every section built and checked once, here, by the config of the layer that reads it;
        # the stages read these typed configs and never parse a section again.
        self.sections: TaskSections = build_sections(self, fail)
        if self.label_field is not None and self.type != "structured":
            fail("label_field", "applies to structured tasks (a classification answer is its label)")
        if self.group_key is not None and (not isinstance(self.group_key, str) or not self.group_key.strip()):
            fail("group_key", "must be a record field or attributes.<name>")

    # --- what the rest of the pipeline asks -----------------------------------------------
    def line(self, name: str) -> int | None:
        """The line of field `name` in the file this task was read from (None: not read from a file)."""
        return line_for(self._lines, name)

    @property
    def binary_metric(self) -> bool:
        """Is the primary metric 0/1 per item (exact McNemar), rather than continuous (bootstrap)?"""
        return self.metric in BINARY_METRICS

    @property
    def answer_key_fields(self) -> list[str] | None:
        """structured: the fields exact match compares (None: every field of the reference)."""
        if self.key_fields:
            return list(self.key_fields)
        required = (self.schema or {}).get("required")
        return list(required) if required else None

    @property
    def record_label_field(self) -> str | None:
        """The answer field that is a record's label (classification: the answer itself)."""
        if self.type == "classification":
            return ANSWER_LABEL
        if self.type == "structured":
            keys = self.answer_key_fields
            return self.label_field or (keys[0] if keys else None)
        return None

    @property
    def answer_regex(self) -> str:
        return self.answer_pattern or GSM8K_ANSWER

    # --- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "task", lines: dict[str, int] | None = None) -> "TaskConfig":
        if not isinstance(data, dict):
            raise TaskError(where, "(top level)", f"must be a mapping of task fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise TaskError(where, str(key), "is not a task field; known fields: "
                                + ", ".join(sorted(known - {"source_path"})), line_for(lines, str(key)))
        for key in ("name", "type"):
            if key not in data:
                raise TaskError(where, key, "is required")
        return cls(**{**data, "source_path": data.get("source_path") or (where if where != "task" else None)}, lines=lines)

    def to_yaml(self, path: Path | None = None) -> str:
        import yaml

        data = {k: v for k, v in self.to_dict().items() if k != "source_path"}
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if path is not None:
            with atomic_text(Path(path)) as fh:
                fh.write(text)
        return text

    def shown_yaml(self) -> str:
        """The definition as metadata may show it: the redaction lists (allow, deny, deny terms),
        which can name people or secrets, as a count and a keyed digest each."""
        import yaml

        data = {k: v for k, v in self.to_dict().items() if k != "source_path"}
        data["redaction"] = {k: list_view([str(x) for x in v]) if k in LISTS and isinstance(v, list) else v
                             for k, v in (self.redaction or {}).items()}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, path: Path | str) -> "TaskConfig":
        """Reads and validates a task file. Relative paths inside it (knowledge, the redaction's
        protected_documents) are read from the task file's own folder."""
        data, where, lines = read_task_file(Path(path))
        return cls.from_dict(data, where, lines)

    def sha256(self) -> str:
        """Digest of the task definition's content (not of where it was read from)."""
        import json

        data = {k: v for k, v in self.to_dict().items() if k != "source_path"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 of the task file's bytes: what lineage records and a changed file changes."""
    return sha256_file(Path(path))
