"""The pieces both data sets share (d2lssd.data.common): the source policy and the generated folder."""

import os
import stat

import pytest

from d2lssd._io import atomic_write
from d2lssd.data import common


def _real_ok():
    return common.DataSource("real", "r", "real")


def _real_fails():
    raise OSError("no network")


def _generated(why):
    return common.DataSource("generated", "g", why)


def test_obtain_follows_source_and_the_offline_switch(monkeypatch):
    monkeypatch.delenv("D2LSSD_OFFLINE", raising=False)
    assert common.obtain("auto", _real_ok, _generated).kind == "real"
    assert common.obtain("generated", _real_ok, _generated).description == "asked for with source='generated'"
    fallback = common.obtain("auto", _real_fails, _generated)
    assert fallback.kind == "generated" and fallback.description == (
        "the real data could not be downloaded (OSError)")  # path-free: the message is dropped
    with pytest.raises(OSError, match="no network"):
        common.obtain("real", _real_fails, _generated)
    with pytest.raises(ValueError, match="source must be one of"):
        common.obtain("fake", _real_ok, _generated)
    monkeypatch.setenv("D2LSSD_OFFLINE", "1")
    assert common.obtain("auto", _real_ok, _generated).description.startswith("D2LSSD_OFFLINE=1 is set")
    with pytest.raises(RuntimeError, match="D2LSSD_OFFLINE=1"):
        common.obtain("real", _real_ok, _generated)


def test_write_generated_marks_reuses_replaces_and_refuses(tmp_path):
    root = tmp_path / "set"
    fields = {"generator": "test", "seed": "1"}
    calls = []

    def fill(tmp):
        calls.append(tmp)
        (tmp / "data.txt").write_text("x")

    assert not common.cached_generated(root, fields, "test")
    assert common.write_generated(root, fields, fill, "a test set", "note: n") == root
    assert (root / common.MARKER).read_text() == "a test set\ngenerator: test\nseed: 1\nnote: n\n"
    assert common.read_marker(root) == {"generator": "test", "seed": "1", "note": "n"}
    assert common.cached_generated(root, fields, "test")
    assert not common.cached_generated(root, dict(fields, seed="2"), "test")  # outdated: to replace
    common.write_generated(root, dict(fields, seed="2"), fill, "a test set", "note: n")
    assert common.read_marker(root)["seed"] == "2" and (root / "data.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary or old folder left
    real = tmp_path / "real"
    real.mkdir()
    with pytest.raises(FileExistsError, match="not a generated test data set"):
        common.cached_generated(real, fields, "test")


def test_a_failing_fill_leaves_nothing_behind(tmp_path):
    def fill(tmp):
        (tmp / "half.txt").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        common.write_generated(tmp_path / "set", {"a": "1"}, fill, "t", "n")
    assert list(tmp_path.iterdir()) == []


def test_check_generator_args_names_the_argument():
    common.check_generator_args(("n", 1, 1), ("seed", 0, 0))
    for bad in (0, True, 1.5, "1"):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            common.check_generator_args(("n", bad, 1))


def test_shown_and_why_not_downloaded():
    home = os.path.expanduser("~")
    assert common.shown(os.path.join(home, "a", "b")) == os.path.join("~", "a", "b")
    assert common.shown("/elsewhere/x") == "/elsewhere/x"
    try:
        raise OSError("outer") from ConnectionResetError(104, "Connection reset by peer")
    except OSError as e:
        assert common.why_not_downloaded(e) == "ConnectionResetError: Connection reset by peer"


def test_atomic_write_mode(tmp_path):
    path = atomic_write(tmp_path / "f.bin", lambda f: f.write(b"abc"), mode=0o644)
    assert path.read_bytes() == b"abc" and stat.S_IMODE(path.stat().st_mode) == 0o644
    private = atomic_write(tmp_path / "g.bin", lambda f: f.write(b"abc"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
