"""Helpers shared by several test files (the training tests): tiny synthetic data and a TinySSD.

A module of its own, not a test file, so that test files import from here and not from each other.
"""

import torch

from d2lssd.models import TinySSD

SIZE = 64  # TinySSD's smallest input: 344 anchors, a training step takes milliseconds


def synthetic(n=8, seed=0):
    """Dark images with one bright square each; labels (n, 1, 5) normalized, class 0."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, SIZE, SIZE, generator=g) * 0.1
    Y = torch.zeros(n, 1, 5)
    for i in range(n):
        x0, y0 = (torch.rand(2, generator=g) * 0.5).tolist()
        Y[i, 0, 1:] = torch.tensor([x0, y0, x0 + 0.4, y0 + 0.4])
        X[i, :, int(y0 * SIZE):int((y0 + 0.4) * SIZE), int(x0 * SIZE):int((x0 + 0.4) * SIZE)] = 1.0
    return X, Y


def batches(X, Y, size=4):
    return [(X[i:i + size], Y[i:i + size]) for i in range(0, len(X), size)]


def new_net(seed=0):
    torch.manual_seed(seed)
    return TinySSD(num_classes=1)


def quiet(**kw):
    return dict(device="cpu", progress=False, plot=None, **kw)
