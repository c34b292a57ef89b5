"Shared pytest set-up: the tests use tiny tensors, for which one torch thread is faster (and much faster on a loaded CPU)."
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
