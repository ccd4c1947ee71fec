"""The right to erasure, above data, training and release: a request (requests) planned read-only
and carried out copy by copy (copies: files under the home; s3: the bucket of stored values),
and the model versions trained on an erased record marked or retired (marks). The lower layers
only consult what it leaves behind (core/data/suppression.py, core/training/manifest.py)."""
