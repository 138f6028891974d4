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
    assert plt.get_fignums() == []  # explorers draw off-screen
    plt.close("all")
    assert d2lssd.loss_explorer is loss_explorer and math.isfinite(float(w.result["focal"].sum()))


def test_static_loss_explorer_has_a_frame_per_combination_and_the_package_curves():
    row = loss_explorer(static=True)
    left, right = row.parts
    assert len(left.frames) == 4 * 4 and len(right.frames) == 3 * 5
    assert all(f.startswith("data:image/png;base64,") for f in left.frames + right.frames)
    # the frame for sigma = 2, beta = 0.25 draws one function twice (beta = 1/sigma^2)
    k = left.combos.index({"sigma": 2.0, "beta": 0.25})
    torch.testing.assert_close(left.results[k]["smooth_l1_sigma"], left.results[k]["smooth_l1_beta"])
    k = right.combos.index({"alpha": 0.5, "gamma": 0.0})
    torch.testing.assert_close(right.results[k]["focal"], right.results[k]["cross_entropy"])
    torch.testing.assert_close(right.results[k]["focal_object"], 0.5 * right.results[k]["cross_entropy"])
    html = row._repr_html_()
    assert html.count('class="d2lssd-explorer"') == 2 and html.count('type="range"') == 4
    assert plt.get_fignums() == []


def test_loss_explorer_follows_the_book_environment(monkeypatch):
    monkeypatch.setenv(d2lssd.widgets.STATIC_ENV, "1")
    assert isinstance(loss_explorer(), d2lssd.widgets.StaticExplorerRow)
    monkeypatch.setenv(d2lssd.widgets.STATIC_ENV, "")
    assert not isinstance(loss_explorer(), d2lssd.widgets.StaticExplorerRow)
