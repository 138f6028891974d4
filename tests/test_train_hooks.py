"""The additive options of train_ssd that serve the Penn-Fudan trainer: epoch_callback, the best
checkpoint, extra checkpoint entries and DistributedSampler.set_epoch (on TinySSD: milliseconds)."""

import math

import pytest
import torch

from d2lssd.train import train_ssd

from _helpers import batches, new_net, quiet, synthetic


class _Loader(list):
    """A list of batches with a sampler that records set_epoch calls."""

    class _Sampler:
        def __init__(self):
            self.epochs = []

        def set_epoch(self, e):
            self.epochs.append(e)

    def __init__(self, items):
        super().__init__(items)
        self.sampler = self._Sampler()


def test_epoch_callback_best_checkpoint_and_set_epoch(tmp_path):
    data = _Loader(batches(*synthetic()))
    scores = iter([0.3, 0.1, 0.5, math.nan])
    seen = []

    def callback(model, record, history):
        seen.append((record["epoch"], len(history), model.training))
        return {"val_AP50": next(scores)}

    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    h = train_ssd(new_net(), data, num_epochs=4, epoch_callback=callback, checkpoint_path=last,
                  best_checkpoint_path=best, checkpoint_extra={"note": "hello"}, **quiet())
    assert data.sampler.epochs == [0, 1, 2, 3]
    assert [s[:2] for s in seen] == [(1, 0), (2, 1), (3, 2), (4, 3)]
    assert h["val_AP50"][:3] == [0.3, 0.1, 0.5] and math.isnan(h["val_AP50"][3])
    state = torch.load(best, weights_only=True)
    assert state["epoch"] == 3 and state["note"] == "hello"  # the best epoch; NaN never counts as best
    assert torch.load(last, weights_only=True)["epoch"] == 4
    # resuming keeps the best so far: a lower value does not overwrite the best checkpoint
    train_ssd(new_net(), data, num_epochs=5, epoch_callback=lambda m, r, hist: {"val_AP50": 0.4},
              checkpoint_path=last, resume=True, best_checkpoint_path=best, **quiet())
    assert torch.load(best, weights_only=True)["epoch"] == 3


def test_distributed_true_without_a_process_group_is_an_error():
    with pytest.raises(ValueError, match="process group"):
        train_ssd(new_net(), batches(*synthetic()), num_epochs=1, distributed=True, **quiet())
