"""The losses explorer: its drawing function and its sliders, tested without a browser."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd.widgets import draw_losses, loss_explorer  # noqa: E402


@pytest.fixture
def axes():
    fig, axes = plt.subplots(1, 2)
    yield axes
    plt.close(fig)


def test_draw_losses_draws_the_package_functions(axes):
    out = draw_losses(axes, sigma=2.0, beta=0.25, alpha=0.25, gamma=2.0)
    x = out["x"]
    # sigma = 2 and beta = 1/4 are the same function
    torch.testing.assert_close(out["smooth_l1_sigma"], out["smooth_l1_beta"])
    torch.testing.assert_close(out["smooth_l1_beta"], F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none",
                                                                       beta=0.25))
    p = out["p"]
    torch.testing.assert_close(out["cross_entropy"], -torch.log(p))
    torch.testing.assert_close(out["focal"], -(1 - p) ** 2 * torch.log(p))
    torch.testing.assert_close(out["focal_object"], 0.25 * out["focal"])
    torch.testing.assert_close(out["focal_background"], 0.75 * out["focal"])
    assert len(axes[0].lines) == 4 and len(axes[1].lines) == 4
    assert axes[0].get_title().startswith("smooth L1") and "focal" in axes[1].get_title()


def test_draw_losses_rejects_bad_knobs(axes):
    with pytest.raises(ValueError, match="sigma"):
        draw_losses(axes, sigma=0.0)
    with pytest.raises(ValueError, match="gamma"):
        draw_losses(axes, gamma=-1.0)
    with pytest.raises(ValueError, match="two matplotlib axes"):
        draw_losses(axes[0])


def test_loss_explorer_redraws_on_slider_change():
    w = loss_explorer()
    sigma, beta, alpha, gamma = w.children[:4]
    assert (sigma.value, beta.value, alpha.value, gamma.value) == (1.0, 1.0, 0.25, 2.0)
    gamma.value = 0.0
    torch.testing.assert_close(w.result["focal"], w.result["cross_entropy"])
    sigma.value = 0.5  # beta = 4 in PyTorch's form
    beta.value = 4.0
    torch.testing.assert_close(w.result["smooth_l1_sigma"], w.result["smooth_l1_beta"])
    i = int(torch.argmin((w.result["x"] - 1.0).abs()))
    xi = w.result["x"][i].item()  # about 1, inside the quadratic zone |x| < beta = 4
    assert w.result["smooth_l1_sigma"][i].item() == pytest.approx(0.5 * xi ** 2 / 4, rel=1e-9)
    assert len(plt.get_fignums()) == 1
    plt.close("all")
    assert d2lssd.loss_explorer is loss_explorer and math.isfinite(float(w.result["focal"].sum()))
