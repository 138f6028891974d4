"""argparse value types shared by the command lines and the typed run configuration.

Each is an argparse ``type=``: it turns the option's text into a value or
raises ``argparse.ArgumentTypeError``, which argparse reports as one line
and exit status 2. They live at the bottom of the package so that the engine
(:mod:`d2lssd.engine.config`) and the command lines (:mod:`d2lssd.cli`,
:mod:`d2lssd.commands`) share them without the engine importing a command line.

Source: ours (argparse's ``type=`` protocol).
"""

from __future__ import annotations

import argparse

__all__ = ["nonneg_int", "positive_int", "unit_float"]


def nonneg_int(text: str) -> int:
    """argparse ``type=``: an integer >= 0, else ``ArgumentTypeError`` (a one-line exit-2 error)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1, else ``ArgumentTypeError``."""
    v = nonneg_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def unit_float(text: str) -> float:
    """argparse ``type=``: a number in [0, 1], else ``ArgumentTypeError``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {v}")
    return v
