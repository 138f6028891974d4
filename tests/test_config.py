"""``TrainConfig``: its checks, the ``d2lssd train`` options derived from it, its record in a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Literal, get_args, get_type_hints

import pytest
import torch

from d2lssd.cli import OneLineParser, main
from d2lssd.commands import train as train_command
from d2lssd.models.registry import MODELS
from d2lssd.engine import TrainConfig
from d2lssd.engine.config import add_config_arguments, config_from_args
from d2lssd.engine import read_checkpoint, save_checkpoint

DATA = ["--coco", "train.json", "--images", "images", "--checkpoint", "run.pt"]
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _train_parser() -> OneLineParser:
    parser = OneLineParser(prog="d2lssd train")
    train_command.add_arguments(parser)
    return parser


def _options(f) -> list[str]:
    """The option names a field should get (written out here, not taken from the code under test)."""
    if "option" in f.metadata:
        return [f.metadata["option"]]
    dashed = f.name.replace("_", "-")
    return [f"--{dashed}", f"--no-{dashed}"] if isinstance(f.default, bool) else [f"--{dashed}"]


def test_the_parsers_defaults_are_the_fields_defaults():
    args = _train_parser().parse_args(DATA)
    assert config_from_args(args) == TrainConfig(checkpoint="run.pt")
    # d2lssd train keeps only the options given (so that they can be laid over a preset's settings) ...
    assert [name for name in FIELDS if hasattr(args, name)] == ["checkpoint"]
    # ... and a parser with defaults has the fields' defaults
    parser = OneLineParser()
    add_config_arguments(parser, TrainConfig)
    args = parser.parse_args(["--checkpoint", "run.pt"])
    for name, f in FIELDS.items():
        if name != "checkpoint":
            assert getattr(args, name) == f.default, name


def test_given_options_win_over_the_base_which_wins_over_the_defaults():
    args = _train_parser().parse_args(DATA + ["--epochs", "3", "--no-augment"])
    cfg = config_from_args(args, TrainConfig, {"epochs": 9, "batch_size": 5, "augment": True})
    assert (cfg.epochs, cfg.batch_size, cfg.augment, cfg.lr) == (3, 5, False, 1e-3)
    assert config_from_args(_train_parser().parse_args(DATA + ["--pretrained"]), TrainConfig,
                            {"pretrained": False}).pretrained is True
    assert config_from_args(_train_parser().parse_args(DATA + ["--no-pretrained"]), TrainConfig,
                            {"pretrained": True}).pretrained is False


def test_options_set_the_fields():
    args = _train_parser().parse_args(DATA + [
        "--resume", "--model", "resnet34", "--size", "320", "--pretrained", "--epochs", "3", "--batch-size", "2",
        "--lr", "0.01", "--weight-decay", "0", "--warmup", "0", "--default-anchors", "--no-augment", "--drop-bad",
        "--val-split", "5", "--device", "cpu", "--workers", "2", "--seed", "-7", "--no-progress"])
    assert config_from_args(args) == TrainConfig(
        checkpoint="run.pt", resume=True, model="resnet34", size=320, pretrained=True, epochs=3, batch_size=2,
        lr=0.01, weight_decay=0.0, warmup=0.0, fit_anchors=False, augment=False, drop_bad=True, val_split=5,
        device="cpu", workers=2, seed=-7, progress=False)
    assert args.coco == "train.json" and args.images == "images"  # the data options stay argparse's


def test_checkpoint_is_required_on_the_command_line_only():
    assert TrainConfig().checkpoint is None  # from Python: a run that writes no checkpoint
    with pytest.raises(SystemExit) as e:
        _train_parser().parse_args(DATA[:4])
    assert e.value.code == 2


def test_every_field_has_help_text_and_appears_in_train_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines (also after hyphens)
    for name, f in FIELDS.items():
        text = f.metadata.get("help")
        assert text, f"{name} has no help text"
        assert all(o in out for o in _options(f)) and "".join(text.split()) in out, name
        if f.default not in (dataclasses.MISSING, None) and not isinstance(f.default, bool):
            assert f"(default:{f.default})" in out, name


def test_model_names_are_the_registry_s():
    for name in MODELS:
        assert TrainConfig(checkpoint="x.pt", model=name).model == name
    with pytest.raises(ValueError, match="model: expected one of .*resnet34.*tinyssd.*the model registry"):
        TrainConfig(checkpoint="x.pt", model="vgg16")


#: one bad value per field (every field is checked)
BAD = {
    "checkpoint": "", "resume": "yes", "model": "vgg16", "size": 0, "pretrained": 1, "epochs": 0,
    "batch_size": -2, "lr": 0.0, "weight_decay": -1e-4, "warmup": 1.0, "fit_anchors": None, "augment": "no",
    "drop_bad": 0, "val_split": 0, "device": "gpu", "workers": -1, "seed": 1.5, "progress": None,
    "preset": "", "schedule": 3, "bn": "sync", "optimizer": "lion", "lr_schedule": "step", "loss": "l2",
    "loss_normalize": "anchor", "amp": True, "channels_last": "yes", "num_train": 0, "num_val": -1, "data": "",
    "source": "web", "score_threshold": 1.5, "nms_threshold": -0.1, "top_k": 0, "patience": 0,
    "time_budget": -1.0, "report": "yes",
}


def test_every_field_has_a_bad_value_below():
    assert set(BAD) == set(FIELDS)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_raises_value_error_naming_the_field(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected .+, got "):
        TrainConfig(**({"checkpoint": "run.pt"} | {name: BAD[name]}))


@pytest.mark.parametrize("name, value", [("epochs", True), ("lr", math.nan), ("lr", math.inf), ("size", 2.0),
                                         ("warmup", -0.01), ("workers", "2"), ("model", None)])
def test_more_bad_values(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        TrainConfig(checkpoint="run.pt", **{name: value})


def test_the_messages_say_what_was_expected():
    with pytest.raises(ValueError, match=r"^epochs: expected an integer >= 1, got 0$"):
        TrainConfig(checkpoint="run.pt", epochs=0)
    with pytest.raises(ValueError, match=r"^warmup: expected a number in \[0, 1\), got 1.0$"):
        TrainConfig(checkpoint="run.pt", warmup=1.0)
    with pytest.raises(ValueError, match=r"^model: expected one of resnet34, scratchssd, tinyssd, tinyssd-bn, "
                                         r"tinyssd-s4 \(the model registry\), got 'vgg16'$"):
        TrainConfig(checkpoint="run.pt", model="vgg16")


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--epochs", "two"), ("--batch-size", "-1"), ("--size", "0"), ("--lr", "-1"),
    ("--lr", "nan"), ("--weight-decay", "-0.1"), ("--warmup", "1"), ("--model", "vgg16"), ("--val-split", "0"),
    ("--device", "gpu"), ("--workers", "-1"), ("--seed", "1.5")])
def test_a_bad_option_gives_one_line_on_stderr_and_exit_status_2(option, value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *DATA, option, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("d2lssd train: error: argument ") and option in err
    assert "Traceback" not in err


def test_round_trip_through_json():
    cfg = TrainConfig(checkpoint="runs/x.pt", model="resnet34", size=320, epochs=3, lr=2e-4, fit_anchors=False,
                      val_split=4, device="cpu", seed=11, progress=False)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data == cfg.to_dict() and TrainConfig.from_dict(data) == cfg
    assert TrainConfig.from_dict({"checkpoint": "x.pt"}) == TrainConfig(checkpoint="x.pt")  # an older record


def test_from_dict_rejects_unknown_and_missing_fields_and_bad_values():
    with pytest.raises(ValueError, match="unknown fields colour"):
        TrainConfig.from_dict({"checkpoint": "x.pt", "colour": "red"})
    with pytest.raises(ValueError, match="^batch_size: "):
        TrainConfig.from_dict({"checkpoint": "x.pt", "batch_size": 0})


def test_a_config_stored_in_a_checkpoint_reads_back_equal(tmp_path):
    cfg = TrainConfig(checkpoint=str(tmp_path / "run.pt"), epochs=2, batch_size=3, warmup=0.0, drop_bad=True)
    save_checkpoint(cfg.checkpoint, torch.nn.Linear(2, 2), None, 1, config=cfg.to_dict())
    state = read_checkpoint(cfg.checkpoint)  # torch.load(weights_only=True): plain data only
    assert TrainConfig.from_dict(state["config"]) == cfg


def test_the_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig(checkpoint="x.pt").epochs = 3  # type: ignore[misc]
    assert dataclasses.replace(TrainConfig(checkpoint="x.pt"), epochs=3).epochs == 3


def test_the_derivation_needs_help_text_and_works_for_another_config():
    @dataclasses.dataclass(frozen=True)
    class NoHelp:
        steps: int = 3

    with pytest.raises(TypeError, match="steps has no help text"):
        add_config_arguments(OneLineParser(), NoHelp)

    @dataclasses.dataclass(frozen=True)
    class Other:
        kind: Literal["a", "b"] = dataclasses.field(default="a", metadata={"help": "the kind"})
        verbose: bool = dataclasses.field(default=False, metadata={"help": "say more"})
        batch_size: int | None = dataclasses.field(default=None, metadata={"help": "images per batch"})

    parser = OneLineParser()
    add_config_arguments(parser, Other)
    assert config_from_args(parser.parse_args(["--kind", "b", "--verbose", "--batch-size", "4"]), Other) == Other(
        "b", True, 4)
    assert config_from_args(parser.parse_args([]), Other) == Other()
