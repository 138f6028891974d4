"""``import d2lssd`` and the training path leave matplotlib unloaded; the drawing names still work."""

import subprocess
import sys
import textwrap

import pytest

import d2lssd


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this one has imported matplotlib already); return stdout."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_d2lssd_and_its_non_drawing_modules_leave_matplotlib_out():
    loaded = _run("""
        import sys
        import d2lssd, d2lssd.train, d2lssd.pennfudan, d2lssd.recipes, d2lssd.cli, d2lssd.metrics
        import d2lssd.data, d2lssd.models, d2lssd.transforms
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'
                     or m in ('d2lssd.plotting', 'd2lssd.widgets', 'ipywidgets')))
    """)
    assert loaded.strip() == "[]"


def test_a_short_training_run_outside_a_notebook_leaves_matplotlib_out():
    loaded = _run("""
        import sys
        import torch
        import d2lssd
        torch.manual_seed(0)
        X, Y = torch.rand(2, 3, 64, 64), torch.tensor([[[0, 0.1, 0.1, 0.5, 0.6]]]).repeat(2, 1, 1)
        net = d2lssd.TinySSD(num_classes=1)
        h = d2lssd.train_ssd(net, [(X, Y)], [(X, Y)], num_epochs=1, device="cpu", progress=False, plot=None)
        d2lssd.predict(net, X, device="cpu")
        assert len(h) == 1
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))
    """)
    assert loaded.strip() == "[]"


def test_the_drawing_names_load_on_first_use():
    loaded = _run("""
        import sys
        import d2lssd
        before = 'matplotlib.pyplot' in sys.modules
        show = d2lssd.show_bboxes
        from d2lssd import anchor_explorer
        import d2lssd.plotting, d2lssd.widgets
        assert show is d2lssd.plotting.show_bboxes and anchor_explorer is d2lssd.widgets.anchor_explorer
        print(before, 'matplotlib.pyplot' in sys.modules)
    """)
    assert loaded.split() == ["False", "True"]


def test_every_public_name_resolves_and_is_listed():
    import d2lssd.plotting
    import d2lssd.widgets

    for name in d2lssd.__all__:
        assert getattr(d2lssd, name) is not None, name
    assert set(d2lssd.__all__) <= set(dir(d2lssd))
    for name, module in d2lssd._LAZY.items():
        assert getattr(d2lssd, name) is getattr(getattr(d2lssd, module), name), name
        assert name in d2lssd.__all__, name
    assert d2lssd.widgets is sys.modules["d2lssd.widgets"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'show_boxes'"):
        d2lssd.show_boxes  # noqa: B018
    assert not hasattr(d2lssd, "no_such_name")
