import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def d2l():
    """d2l's own implementation (the d2l package, installed without its pinned
    dependencies by .ci/run), used as the reference for the d2l-named functions."""
    from d2l import torch as d2l_torch

    return d2l_torch
