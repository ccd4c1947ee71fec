"""Where the record-level steps run: in this process and its worker processes (`local`, the
default) or on Ray Data (`ray`: an embedded local Ray, or the cluster at RAY_ADDRESS). Both run
the same functions on the same chunks, so the output bytes, their order, the quarantine and the
counts are the same either way.

    engines     the choice (`local` | `ray`), validated once, and Ray's connection
    ray_data    Ray Data map_batches with a callable class: the analyzer built once per actor
"""
from ft_pipeline.core.scale.engines import ENGINES, EngineError, check_engine

__all__ = ["ENGINES", "EngineError", "check_engine"]
