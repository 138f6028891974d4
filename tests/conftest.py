import os

os.environ.setdefault("MPLBACKEND", "Agg")

import urllib.error  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# In CI the property tests draw the same examples every run (a red CI must be
# reproducible); locally they explore new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def d2l():
    """d2l's own implementation (the d2l package, installed without its pinned
    dependencies by .ci/run), used as the reference for the d2l-named functions."""
    from d2l import torch as d2l_torch

    return d2l_torch


@pytest.fixture
def no_network(monkeypatch):
    """Downloads fail as without a network (``URLError``), and the data settings are the defaults."""
    from d2lssd.data import download as dl

    def fail(url, timeout):
        raise urllib.error.URLError("network disabled in the tests")

    monkeypatch.setattr(dl, "_urlopen", fail)
    monkeypatch.delenv("D2LSSD_OFFLINE", raising=False)
    monkeypatch.delenv("D2LSSD_DATA", raising=False)
