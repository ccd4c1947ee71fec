"""How presidio is imported, on its own so that the recognizers, the name lists and the engine, which
all need it first, can share it without importing one another."""
from __future__ import annotations

import sys


def import_presidio() -> None:
    """Import presidio_analyzer without transformers and torch. Its nlp_engine package imports
    transformers (and torch with it) for the optional Hugging Face engine: 8-10 s per process on
    this box, paid again by every worker, for a spaCy engine that needs neither. They are hidden
    only while presidio is first imported, and only when not imported already, so later imports
    of transformers or torch (training in the same process) work as usual."""
    if "presidio_analyzer" in sys.modules:
        return
    hidden = [name for name in ("transformers", "torch") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError, which presidio tolerates
    try:
        import presidio_analyzer  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
