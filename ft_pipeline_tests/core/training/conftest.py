from pathlib import Path

import pytest

from ft_pipeline_tests.core.training.helpers import write_export


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    return write_export(tmp_path_factory.mktemp("export"))
