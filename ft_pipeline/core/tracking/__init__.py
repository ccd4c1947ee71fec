"""MLflow tracking, mirrored from the pipeline and never in its way: each training run with its
params, loss history, evaluation and artifacts (runs), the file registry's versions and aliases
(models), all sent through one retry queue (queue) so an unreachable tracking server costs a
warning, not a run. The file registry stays the source of truth for every gate.

Only digests and counts are sent: never record text or record ids.
"""
