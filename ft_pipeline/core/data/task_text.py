"""The task file's own text, checked once when the task loads, with the redaction engine.

The system prompt goes into every exported conversation as written: the redactor never touches
it, and so the export gates leave it out (residual_pii.py). A real name or number in it is the
task file's mistake, reported as one, with the span shown: the task file is not raw data. So is a
confidential marker, secret or deny term in it (the confidential-content screen's reasons).

NER alone on instructions is a poor witness ("Refer to the speakers as Speaker A and Speaker B."
makes "Speaker B." a person), so a finding of spaCy's counts only when a word of it is a known name
(the redactor's gazetteer); every other recognizer (identifier patterns, the gazetteer itself, the
task's own patterns and deny list) counts as it stands. A false positive goes on the task's
`redaction.allow_list`, which this check reads, as the redactor and the gates do.

Cheap by construction: nothing is loaded for a task without a system prompt; the analyzer is the
one the redactor caches per process; a text already checked under the same redaction settings is
not checked again (tasks are loaded by every stage, sometimes many times per run).
"""
from __future__ import annotations

import hashlib
import json
import re

TEXT_FIELDS = ("system_prompt",)  # task fields whose text reaches the model as written
NER = "SpacyRecognizer"
_CHECKED: set[str] = set()  # digests of (texts, redaction settings) found clean in this process


def check_task_text(task) -> None:
    """Raises TaskError naming the field and what was found: the character span, the entity and the
    text, or the confidential-content screen's reason."""
    from ft_pipeline.core.data.screening import screen_text
    from ft_pipeline.core.task_file import TaskError

    texts = {name: getattr(task, name) for name in TEXT_FIELDS if (getattr(task, name) or "").strip()}
    if not texts:
        return
    config = task.sections.redaction
    digest = hashlib.sha256(json.dumps([texts, config.to_dict()], sort_keys=True, default=str).encode()).hexdigest()
    if digest in _CHECKED:
        return
    where = task.source_path or "task"
    for name, text in texts.items():  # the export's confidential-content gate leaves it out too
        if reason := screen_text(text, config.screening):
            raise TaskError(where, name, f"trips the confidential-content screen ({reason}): task text reaches "
                                         "every training conversation as written", task.line(name))
    for (name, text), span in _findings(texts, config):
        raise TaskError(where, name, (
            f"characters {span.start}-{span.end} ({text[span.start:span.end]!r}) read as {span.entity} by "
            f"{span.recognizer} (score {span.score:.2f}): task text reaches every training conversation "
            "unredacted; remove it, or add it to redaction.allow_list if it is not personal data"),
            task.line(name))
    _CHECKED.add(digest)


def _findings(texts: dict[str, str], config):
    from ft_pipeline.core.data.redaction import analyze_texts, name_gazetteer
    from ft_pipeline.core.data.redaction.names import NAME_WORD

    known = name_gazetteer()
    for item, spans in zip(texts.items(), analyze_texts(list(texts.values()), config)):
        for span in spans:
            words = re.findall(NAME_WORD, item[1][span.start:span.end])
            if span.recognizer != NER or any(w in known for w in words):
                yield item, span
