import random

import numpy as np
import pytest
import torch

from agentdistill.testing import save_tiny_pair, tiny_tokenizer

# Tiny models gain nothing from intra-op threads, and `pytest -n 2` on 2 cores with 2 threads per
# worker oversubscribes the CPU (measured 20x slower generation under load): one thread per worker.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


@pytest.fixture(scope="session")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory, tok):
    """(teacher_dir, student_dir): tiny Llamas saved with ``save_pretrained`` and a local BPE tokenizer."""
    return save_tiny_pair(tmp_path_factory.mktemp("models"), tok)
