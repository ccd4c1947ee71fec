"""The task file as an asset: the one knob that says what the pipeline fine-tunes for.

Every asset that reads the task depends on this one and records its sha256, so editing the task
file and materializing `task` again makes everything downstream stale, and the audit trail shows
which task definition a model was trained and evaluated against. Its data version is the file's
digest: re-reading an unchanged file changes nothing downstream.
"""

import dagster as dg
from pydantic import Field

from ft_pipeline.core.task_file import default_task_path, task_path
from ft_pipeline.defs.failures import user_failure


class TaskFileConfig(dg.Config):
    path: str = Field(
        default=default_task_path(),
        description="the task file (configs/tasks/<name>.yaml; relative paths are read from the repo root); "
                    "default $FT_PIPELINE_TASK, else the demo's task",
    )


@dg.asset(group_name="task", kinds={"yaml"}, code_version="1")
def task(context: dg.AssetExecutionContext, config: TaskFileConfig) -> dg.Output:
    """The user's task, declared once (configs/tasks/<name>.yaml): type, system prompt, metric and
    target, labels or schema, outcome for the bias audit, column mapping, redaction additions.
    Everything downstream reads it; its sha256 is in every downstream asset's metadata."""
    from ft_pipeline.core.data.task_text import check_task_text
    from ft_pipeline.core.task_loader import read_task

    path = task_path(config.path)
    with user_failure():  # a TaskError
        loaded, digest = read_task(path)  # the digest of the very bytes parsed
        check_task_text(loaded)  # its text goes into every conversation unredacted
    context.add_output_metadata({
        "path": dg.MetadataValue.path(str(path)),
        "sha256": dg.MetadataValue.text(digest),
        "name": loaded.name,
        "type": loaded.type,
        "metric": loaded.metric,
        "target": loaded.target,
        # The event log keeps metadata for good: the redaction lists only as counts and digests.
        "definition": dg.MetadataValue.md(f"```yaml\n{loaded.shown_yaml()}```"),
    })
    # Plain data, read back by each stage through core's cached loader (load_task): the file's path
    # and digest, and what tracking names the run by. Never a pickled TaskConfig: the erasure scan
    # reads stored values with an unpickler that refuses every class.
    return dg.Output({"path": str(path), "sha256": digest, "name": loaded.name, "type": loaded.type,
                      "metric": loaded.metric}, data_version=dg.DataVersion(digest[:16]))
