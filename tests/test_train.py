import copy
import math
import os

import pytest
import torch

import d2lssd

from d2lssd.engine.progress import LivePlot, in_notebook
from d2lssd.engine import History, load_checkpoint, save_checkpoint
from d2lssd.train import predict, train_ssd

from _helpers import batches, new_net, quiet, synthetic


@pytest.fixture(scope="module")
def data():
    return batches(*synthetic())


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loss_decreases_and_history_is_complete(data):
    h = train_ssd(new_net(), data, data, num_epochs=3, **quiet())
    assert isinstance(h, History) and len(h) == 3 and h["epoch"] == [1, 2, 3]
    loss = h["train_loss"]
    assert loss[-1] < loss[0] and all(math.isfinite(x) for x in loss)
    for key in ("train_class_error_positive", "train_class_error_all", "val_class_error_positive",
                "val_class_error_all"):
        assert all(0.0 <= x <= 1.0 for x in h[key]), key
    assert all(x > 0 for x in h["train_bbox_mae_positive"] + h["val_bbox_mae_positive"] + h["val_loss"])
    assert h.meta == {"device": "cpu", "amp": False, "optimizer": "SGD", "loss_fn": "ssd_loss", "channels_last": False}
    assert h["lr"] == [0.2] * 3


def test_throughput_counts_every_image_over_the_whole_epoch():
    X, Y = synthetic(7)
    h = train_ssd(new_net(), batches(X, Y, 3), num_epochs=1, **quiet())  # batches of 3, 3, 1
    r = h.last
    assert r["train_images"] == 7
    assert r["epoch_time_s"] > 0 and r["throughput"] == pytest.approx(7 / r["epoch_time_s"])
    assert math.isnan(r["val_loss"])


def test_images_without_objects_are_background_only():
    X, _ = synthetic(4)
    Y = torch.full((4, 2, 5), -1.0)  # only padding rows
    h = train_ssd(new_net(), [(X, Y)], [(X, Y)], num_epochs=1, **quiet())
    assert math.isfinite(h.last["train_loss"])
    assert math.isnan(h.last["train_class_error_positive"])  # no positive anchors: undefined, not 0
    assert math.isnan(h.last["val_bbox_mae_positive"])
    assert 0 <= h.last["train_class_error_all"] <= 1


def test_empty_batch_is_skipped_with_a_warning(data):
    X, Y = data[0]
    with pytest.warns(RuntimeWarning, match="epoch 1, batch 1 is empty"):
        h = train_ssd(new_net(), [(X, Y), (X[:0], Y[:0])], num_epochs=1, **quiet())
    assert h.last["train_images"] == 4
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="no images"):
        train_ssd(new_net(), [(X[:0], Y[:0])], num_epochs=1, **quiet())


def test_nan_loss_raises_before_the_step_and_leaves_the_model_unchanged(data):
    X, Y = data[0]
    X = X.clone()
    X[1, 0, 5, 5] = float("nan")
    net = new_net()
    before = copy.deepcopy(net)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 0 .*before the optimizer step"):
        train_ssd(net, [(X, Y)] + data, num_epochs=1, **quiet())
    assert states_equal(net, before)  # parameters and BatchNorm statistics


def test_inf_loss_names_the_epoch_and_batch(data):
    calls = []

    def loss_fn(*args):
        from d2lssd.losses import ssd_loss

        calls.append(1)
        loss = ssd_loss(*args)
        return loss + (math.inf if len(calls) == 4 else 0.0)

    with pytest.raises(FloatingPointError, match="epoch 2, batch 1"):
        train_ssd(new_net(), data, num_epochs=3, loss_fn=loss_fn, **quiet())


def test_checkpoint_round_trip(tmp_path, data):
    net = new_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    h = train_ssd(net, data, num_epochs=1, optimizer=opt, **quiet())
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, net, opt, 1, h)
    raw = torch.load(path, weights_only=True)  # plain data and tensors only
    assert raw["epoch"] == 1
    net2 = new_net(seed=1)
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.1, momentum=0.9)
    epoch, h2, _ = load_checkpoint(path, net2, opt2)
    assert epoch == 1 and h2 == h and states_equal(net, net2)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k]["momentum_buffer"], s2[k]["momentum_buffer"])
                                          for k in s1)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt", net2)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", net2)


def test_resume_continues_the_same_history_and_run(tmp_path, data):
    path = tmp_path / "run" / "tinyssd.pt"
    net0 = new_net()
    straight = copy.deepcopy(net0)
    h_straight = train_ssd(straight, data, num_epochs=3, **quiet())

    first = copy.deepcopy(net0)
    h_first = train_ssd(first, data, num_epochs=2, checkpoint_path=path, **quiet())
    assert path.is_file() and load_checkpoint(path, new_net())[0] == 2

    resumed = new_net(seed=5)  # different weights: the checkpoint must overwrite them
    h = train_ssd(resumed, data, num_epochs=3, checkpoint_path=path, resume=True, **quiet())
    assert h["epoch"] == [1, 2, 3]
    assert History(h.records[:2], h.meta) == History(h_first.records, h_first.meta)  # NaN == NaN here
    # Same data order, deterministic CPU kernels: resuming equals training straight through.
    assert h["train_loss"] == pytest.approx(h_straight["train_loss"], rel=1e-4)
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    # Nothing left to do: no training, the model is the checkpoint's.
    again = new_net(seed=6)
    h_again = train_ssd(again, data, num_epochs=3, checkpoint_path=path, resume=True, **quiet())
    assert len(h_again) == 3 and states_equal(again, resumed)
    assert not [p for p in os.listdir(path.parent) if p != path.name]  # no temporary files left


def test_resume_without_a_checkpoint_trains_from_scratch(tmp_path, data):
    h = train_ssd(new_net(), data, num_epochs=1, checkpoint_path=tmp_path / "new.pt", resume=True, **quiet())
    assert len(h) == 1 and (tmp_path / "new.pt").is_file()
    with pytest.raises(ValueError, match="checkpoint_path"):
        train_ssd(new_net(), data, num_epochs=1, resume=True, **quiet())


def test_interrupted_checkpoint_write_keeps_the_old_checkpoint(tmp_path, monkeypatch, data):
    path = tmp_path / "ckpt.pt"
    net = new_net()
    h = train_ssd(net, data, num_epochs=1, checkpoint_path=path, **quiet())
    old = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train_ssd(net, data, num_epochs=2, checkpoint_path=path, resume=True, **quiet())
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, net, None, 5, h)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # temporary files removed
    epoch, h2, _ = load_checkpoint(path, new_net())
    assert epoch == 1 and h2 == h


def test_plot_text_prints_one_line_per_epoch(capsys, data):
    train_ssd(new_net(), data, data, num_epochs=2, device="cpu", progress=False, plot="text")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: train loss")
    assert "class err pos" in lines[1] and "val loss" in lines[1] and "img/s on cpu" in lines[1]


def test_plot_auto_outside_a_notebook_is_text_and_bad_plot_raises(capsys, data):
    train_ssd(new_net(), data[:1], num_epochs=1, device="cpu", progress=False, plot="auto")
    assert capsys.readouterr().out.startswith("epoch 1/1")
    with pytest.raises(ValueError, match="plot"):
        train_ssd(new_net(), data, num_epochs=1, plot="browser", device="cpu", progress=False)


def test_live_plot_draws_the_curves(data, capsys):
    h = History([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_class_error_positive": 0.9,
                  "train_class_error_all": 0.01, "train_bbox_mae_positive": 2.0},
                 {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "train_class_error_positive": 0.5,
                  "train_class_error_all": 0.005, "train_bbox_mae_positive": 1.0}])
    plot = LivePlot()  # outside IPython, display() prints the figure's repr
    plot.update(h, num_epochs=5)
    loss_ax, cls_ax, box_ax = plot.axes
    assert len(loss_ax.lines) == 2 and len(cls_ax.lines) == 2 and len(box_ax.lines) == 1
    assert list(loss_ax.lines[0].get_ydata()) == [1.0, 0.5]


def test_progress_bar_counts_the_batches_and_shows_the_running_loss(data, capsys):
    h = train_ssd(new_net(), data, num_epochs=1, device="cpu", progress=True, plot=None)
    err = capsys.readouterr().err  # tqdm writes to stderr
    assert "epoch 1/1" in err and "0/2" in err and "2/2" in err  # 8 images in batches of 4
    assert f"loss={h.last['train_loss']:.4f}" in err  # the bar's last postfix is the epoch's mean loss
    quiet_run = train_ssd(new_net(), data, num_epochs=1, **quiet())
    assert h["train_loss"] == quiet_run["train_loss"] and h.last["train_images"] == 8  # the bar changes nothing


def test_amp_off_cuda_warns_and_runs_in_float32(data):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: amp is honoured")
    with pytest.warns(RuntimeWarning, match="amp=True needs CUDA"):
        h = train_ssd(new_net(), data[:1], num_epochs=1, amp=True, **quiet())
    assert h.meta["amp"] is False


def test_predict_returns_sorted_thresholded_detections(data):
    X, _ = data[0]
    net = new_net().train()
    dets = predict(net, X, score_threshold=0.0, nms_threshold=0.5)
    assert net.training  # mode restored
    assert isinstance(dets, list) and len(dets) == 4
    for d in dets:
        assert d.dim() == 2 and d.shape[1] == 6 and d.device.type == "cpu"
        assert torch.all(d[:, 0] == 0)  # one class, background never reported
        assert torch.all(d[1:, 1] <= d[:-1, 1])  # by descending score
    high = predict(net, X, score_threshold=0.55)
    assert all(torch.all(d[:, 1] >= 0.55) for d in high)
    single = predict(net, X[0], score_threshold=0.0)
    torch.testing.assert_close(single, dets[0])
    assert predict(net, X[:0]) == []
    with pytest.raises(ValueError, match="images"):
        predict(net, X.long())


def test_train_predict_and_map_run_end_to_end():
    # predict's output goes straight into mean_average_precision. (A few CPU
    # steps are far too few for a good AP; the chapter trains on bananas.)
    from d2lssd.metrics import mean_average_precision

    X, Y = synthetic(8)
    net = new_net()
    train_ssd(net, batches(X, Y), num_epochs=2, **quiet())
    dets = predict(net, X, score_threshold=0.01)
    r = mean_average_precision(dets, Y)
    assert r["num_images"] == 8 and r["num_targets"] == 8 and r["num_detections"] == sum(map(len, dets))
    assert 0.0 <= r["AP"] <= r["AP50"] <= 1.0


def test_notebook_mode_updates_the_figure_once_per_epoch(monkeypatch, capsys, data):
    import IPython.display

    updates = []

    class Handle:
        def update(self, fig):
            updates.append(len(fig.axes[0].lines))

    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: Handle())
    train_ssd(new_net(), data[:1], data[:1], num_epochs=2, device="cpu", progress=False, plot="notebook")
    assert updates == [2, 2]  # train and val loss curves, redrawn after each epoch
    assert capsys.readouterr().out.startswith("epoch 2/2")  # one summary line at the end


def test_notebook_detection(monkeypatch):
    import sys
    import types

    class ZMQInteractiveShell:
        config = {}

    class TerminalInteractiveShell:
        config = {}

    for shell, expect in [(None, False), (TerminalInteractiveShell(), False), (ZMQInteractiveShell(), True)]:
        monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda s=shell: s))
        assert in_notebook() is expect
    monkeypatch.delitem(sys.modules, "IPython")
    assert in_notebook() is False


def test_lr_scheduler_steps_once_per_batch_and_resumes_from_the_checkpoint(tmp_path, data):
    ck = tmp_path / "ck.pt"

    def setup():
        net = new_net()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        return net, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    net, opt, sched = setup()
    history = train_ssd(net, data, num_epochs=1, optimizer=opt, lr_scheduler=sched, checkpoint_path=ck, **quiet())
    assert len(data) == 2 and history.last["lr"] == pytest.approx(0.1 * 0.5 ** 2)  # two batches, two steps
    net2, opt2, sched2 = setup()
    train_ssd(net2, data, num_epochs=2, optimizer=opt2, lr_scheduler=sched2, checkpoint_path=ck, resume=True,
              **quiet())
    assert sched2.last_epoch == 4 and opt2.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 4)


def test_channels_last_gives_the_same_step_and_leaves_the_model_channels_last(data):
    a, b = new_net(), new_net()
    train_ssd(a, data[:1], num_epochs=1, **quiet())
    history = train_ssd(b, data[:1], num_epochs=1, channels_last=True, **quiet())
    w = b.blk_0[0][0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert history.meta["channels_last"] is True
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, atol=1e-3, rtol=1e-3, msg=name)  # conv backward sums in another order
    X = data[0][0]
    for da, db in zip(predict(a, X, score_threshold=0.0, top_k=5), predict(b, X, score_threshold=0.0, top_k=5)):
        torch.testing.assert_close(da, db, atol=1e-4, rtol=1e-4)


def test_evaluate_ap_is_map_of_predict_on_every_batch(data):
    net = new_net()
    train_ssd(net, data, num_epochs=1, **quiet())
    result = d2lssd.evaluate_ap(net, data)
    dets = [d for X, _ in data for d in predict(net, X, score_threshold=0.01, top_k=200)]
    targets = [y for _, Y in data for y in Y]
    assert len(result["detections"]) == len(result["targets"]) == 8 and result["num_targets"] == 8
    for got, want in zip(result["detections"], dets):
        assert torch.equal(got, want) and len(got) <= 200 and bool((got[:, 1] >= 0.01).all())
    assert all(torch.equal(a, b) for a, b in zip(result["targets"], targets))
    by_hand = d2lssd.mean_average_precision(dets, targets)
    for key in ("AP50", "AP75", "AP"):
        assert result[key] == by_hand[key], key
    assert 0.0 <= result["AP50"] <= 1.0
