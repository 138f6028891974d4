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
    "check-data": ("d2lssd.data.check", "check a COCO, Pascal VOC or YOLO detection data set: one line per problem"),
    "export": ("d2lssd.commands.export", "export a trained checkpoint to ONNX with decoding, NMS and top-k in the graph"),
    "convert": ("d2lssd.commands.convert", "convert a detection data set between COCO, Pascal VOC and YOLO"),
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
        if name == "check-data":
            _add_check_data_yolo(p)
    return parser


# --------------------------------------------------------------------------- check-data --yolo
# ``d2lssd check-data``'s COCO and VOC options live in d2lssd.data.check; the YOLO
# ones are added here and run d2lssd.data.yolo.check_yolo (imported when used).


def _add_check_data_yolo(parser: argparse.ArgumentParser) -> None:
    """``--yolo PATH [--yolo-split NAME]`` of ``d2lssd check-data``."""
    parser.add_argument("--yolo", metavar="PATH", help="a YOLO data set: an Ultralytics dataset YAML, or a folder "
                        "with images/ and labels/ (and classes.txt or data.yaml for the class names)")
    parser.add_argument("--yolo-split", metavar="NAME", help="with --yolo: check only this split of the YAML "
                        "(default: every split it names), or images/NAME/ of a folder")


def _check_data_yolo(args) -> int:
    """``d2lssd check-data --yolo``: the report of each split, printed as for COCO and VOC; 0 if all are clean."""
    from pathlib import Path

    from .data.yolo import check_yolo, yolo_splits

    if args.yolo is None:
        raise ValueError("give --coco FILE --images DIR, --voc DIR or --yolo PATH")
    if args.coco is not None or args.voc is not None:
        raise ValueError("give one of --coco, --voc and --yolo")
    if not Path(args.yolo).exists():
        raise FileNotFoundError(f"--yolo: no file or folder {args.yolo}")
    splits = [args.yolo_split] if args.yolo_split is not None else yolo_splits(args.yolo)
    status = 0
    for split in splits:
        report = check_yolo(args.yolo, split, verify_images=not args.no_verify_images)
        if not args.quiet:
            for line in report.lines() + report.warning_lines():
                print(line)
        out = sys.stdout if report.ok else sys.stderr
        for line in report.class_lines():
            print(line, file=out)
        print(report.summary(), file=out)
        status = status or (0 if report.ok else 1)
    return status


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
    command = module.run
    if args.command == "check-data" and (getattr(args, "yolo", None) is not None
                                         or (args.coco is None and args.voc is None)):
        command = _check_data_yolo  # also says that no data was named, naming all three options
    return run_reporting(f"d2lssd {args.command}", command, args)


def run_reporting(prog: str, command, args) -> int:
    """Run ``command(args)`` and turn a failure into a message on stderr and an exit status.

    Args:
        prog: the name the messages start with, e.g. ``"d2lssd train"``.
        command: a callable taking the parsed arguments and returning an
            exit status (``None`` means 0).
        args: the parsed arguments.

    Returns:
        ``command``'s status; 1 after ``ValueError``, ``FileNotFoundError``,
        ``RuntimeError`` or ``OSError`` (``"PROG: error: <message>"`` on
        stderr, every line of it, no traceback); 130 after ``KeyboardInterrupt``. Other
        exceptions (bugs) propagate with their traceback.
    """
    try:
        return int(command(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        # The whole message: a data set's refusal ends its first line with ":" and lists the bad images below.
        msg = str(e).rstrip() or type(e).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 1
