from pathlib import Path

import pytest

from ft_pipeline_tests.core.training.helpers import write_export


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    return write_export(tmp_path_factory.mktemp("export"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Two cores shared with other test processes: oversubscribed OpenMP threads spin for nothing."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
