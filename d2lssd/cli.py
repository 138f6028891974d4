"""The ``d2lssd`` command line: ``python -m d2lssd COMMAND ...`` (console script ``d2lssd``).

Each subcommand lives in its own module, which defines two functions:

* ``add_arguments(parser)``: adds the command's options to an
  :class:`argparse.ArgumentParser` (every option with ``help=`` text);
* ``run(args) -> int``: runs the command and returns the exit status.

:data:`COMMANDS` maps a command name to ``(module, one-line help)``. The
module is imported only when its command runs, so ``d2lssd --help`` stays fast
and a command never pays for another's imports.

Errors follow one rule: a bad argument prints one line on stderr and exits
with status 2 (argparse); a failure while running (a missing file, a bad
value, a dataset with errors) prints ``d2lssd COMMAND: error: ...`` on one line
and exits with status 1; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "OneLineParser", "build_parser", "main", "run_reporting"]

#: command name -> (module that implements it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("d2lssd.commands.train", "train an SSD on a COCO or Pascal VOC data set and write a checkpoint"),
    "evaluate": ("d2lssd.commands.evaluate", "AP50, AP, AP75 and per-class AP50 of a checkpoint on a data set"),
    "predict": ("d2lssd.commands.predict", "detect objects on photos: drawn boxes and a COCO results JSON"),
    "check-data": ("d2lssd.data.check", "check a COCO or Pascal VOC detection data set: one line per problem"),
    "export": ("d2lssd.commands.export", "export a trained checkpoint to ONNX with decoding, NMS and top-k in the graph"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: message (see --help)``, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``d2lssd`` parser with one subparser per entry of :data:`COMMANDS`.

    Returns:
        an :class:`OneLineParser`; ``args.command`` names the chosen command.
    """
    parser = OneLineParser(prog="d2lssd", description="SSD object detection: train, evaluate, predict, "
                           "check a dataset, export a model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m d2lssd`` and the ``d2lssd`` console script.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        the exit status: 0 on success, 1 for a failure while running (one line
        on stderr), 2 for bad arguments, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return run_reporting(f"d2lssd {args.command}", module.run, args)


def run_reporting(prog: str, command, args) -> int:
    """Run ``command(args)`` and turn a failure into one line on stderr and an exit status.

    Args:
        prog: the name the messages start with, e.g. ``"d2lssd train"``.
        command: a callable taking the parsed arguments and returning an
            exit status (``None`` means 0).
        args: the parsed arguments.

    Returns:
        ``command``'s status; 1 after ``ValueError``, ``FileNotFoundError``,
        ``RuntimeError`` or ``OSError`` (``"PROG: error: <first line>"`` on
        stderr, no traceback); 130 after ``KeyboardInterrupt``. Other
        exceptions (bugs) propagate with their traceback.
    """
    try:
        return int(command(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 1
