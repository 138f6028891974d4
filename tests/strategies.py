"""Hypothesis strategies and generators of boxes shared by the tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np

coord = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=32)


@st.composite
def boxes(draw, min_n=0, max_n=12, min_size=0.0):
    """Corner boxes (n, 4) inside the unit square, float32; zero-area boxes allowed by default."""
    n = draw(st.integers(min_n, max_n))
    a = draw(arrays(np.float32, (n, 2), elements=coord))
    b = draw(arrays(np.float32, (n, 2), elements=coord))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if min_size:
        hi = np.maximum(hi, lo + min_size).astype(np.float32)
    return torch.from_numpy(np.concatenate([lo, hi], axis=1))


def random_boxes(n, seed=0, min_size=0.01, max_size=0.4, dtype=torch.float32):
    """n random corner boxes in the unit square (positive area)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 2, generator=g)
    wh = torch.rand(n, 2, generator=g) * (max_size - min_size) + min_size
    return torch.cat((c - wh / 2, c + wh / 2), dim=1).to(dtype)


def clustered(n, k, seed=0, quantize=None):
    """n boxes in k tight clusters with random scores; optionally coordinates and
    scores rounded to a grid so that ties and exact-threshold IoUs occur."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(k, 2, generator=g)
    sizes = torch.rand(k, 2, generator=g) * 0.3 + 0.05
    which = torch.randint(0, k, (n,), generator=g)
    c = centers[which] + (torch.rand(n, 2, generator=g) - 0.5) * 0.2 * sizes[which]
    wh = sizes[which] * (1 + (torch.rand(n, 2, generator=g) - 0.5) * 0.2)
    b = torch.cat((c - wh / 2, c + wh / 2), dim=1)
    s = torch.rand(n, generator=g)
    if quantize:
        b = (b * quantize).round() / quantize
        s = (s * 8).round() / 8  # many exact score ties
    return b, s
