"""The right to erasure, above data, training and release: a request (requests) planned read-only
and carried out copy by copy (copies: files under the home; s3: the bucket of stored values),
the adapters and checkpoints trained on an erased record deleted (adapters), the model versions
marked or retired and their lineage scrubbed (marks); inventory lists every place a record can
live and the eraser that reaches it. The lower layers only consult what it leaves behind
(core/data/suppression.py, core/training/manifest.py)."""
