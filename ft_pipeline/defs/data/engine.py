"""Where the record-level steps run, for every run the UI, a sensor or a schedule launches:
FT_PIPELINE_ENGINE=local (default) | ray, and RAY_ADDRESS for a Ray cluster (an embedded Ray
otherwise). `ft-pipeline run --engine` sets it for one run."""
import os

import dagster as dg
from pydantic import Field

from ft_pipeline.core.scale import ENGINES, check_engine
from ft_pipeline.defs.failures import user_failure


class RecordEngineResource(dg.ConfigurableResource):
    engine: str = Field(default="local", description=f"one of {', '.join(ENGINES)}; ray uses RAY_ADDRESS when set")

    def checked(self) -> str:
        """The engine, or the run stops in one line (a typo, or Ray not installed)."""
        with user_failure():  # an EngineError
            return check_engine(self.engine)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"record_engine": RecordEngineResource(
        engine=os.environ.get("FT_PIPELINE_ENGINE", "local"))})
