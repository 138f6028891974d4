"""Pair and clean the chapter notebooks: ``python tools/sync_notebooks.py [files...]``.

Every chapter is a MyST source ``notebooks/<name>.md`` paired by jupytext with
``notebooks/<name>.ipynb``. This script

1. strips outputs, execution counts and Colab metadata from the ``.ipynb`` files,
   keeping their modification times, so the next step still sees which file of
   a pair was edited last;
2. runs ``jupytext --sync`` on each pair (the more recently modified file wins;
   a new ``.md`` gets its ``.ipynb``; an ``.ipynb`` without ``.md``, e.g. one
   downloaded from Colab, gets ``formats: ipynb,md:myst`` and its ``.md``);
3. strips the ``.ipynb`` files again and removes Colab metadata from the ``.md``.

Before step 2 it folds the solutions: every code cell between a
``{solution-start}`` and its ``{solution-end}`` gets the cell metadata
``jupyter: {source_hidden: true, outputs_hidden: true}`` in the ``.md`` (so in
the ``.ipynb`` too), which JupyterLab, Notebook 7 and VS Code show collapsed,
as the book shows the solution folded in a dropdown.

tests/test_notebook_pairs.py checks the result. ``bash tools/sync_notebooks.sh``
runs this with the project's ``.venv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
COLAB_NOTEBOOK_KEYS = ("colab", "accelerator", "gpuClass", "widgets")
COLAB_CELL_KEYS = ("colab", "id", "outputId", "executionInfo", "colab_type")


def _clean(nb, outputs: bool) -> None:
    for key in COLAB_NOTEBOOK_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in COLAB_CELL_KEYS:
            cell.metadata.pop(key, None)
        if outputs and cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def _rewrite_keeping_mtime(path: Path, text: str) -> None:
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def strip_ipynb(path: Path) -> None:
    if not path.exists():
        return
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    _clean(nb, outputs=True)
    after = nbformat.writes(nb)
    after += "" if after.endswith("\n") else "\n"
    if after != before:
        _rewrite_keeping_mtime(path, after)
        print(f"stripped {path.relative_to(ROOT)}")


def clean_md(path: Path) -> None:
    nb = jupytext.read(path)
    if any(k in nb.metadata for k in COLAB_NOTEBOOK_KEYS) or any(
            k in c.metadata for c in nb.cells for k in COLAB_CELL_KEYS):
        _clean(nb, outputs=False)
        _rewrite_keeping_mtime(path, jupytext.writes(nb, fmt="md:myst"))
        print(f"removed Colab metadata from {path.relative_to(ROOT)}")


FOLDED = {"source_hidden": True, "outputs_hidden": True}


def fold_solutions(nb) -> bool:
    """Give every code cell of a solution the metadata ``jupyter: FOLDED``; True if a cell changed."""
    changed = inside = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                inside = True
            if "{solution-end}" in cell.source:
                inside = "{solution-start}" in cell.source.rsplit("{solution-end}", 1)[1]
        elif inside and cell.cell_type == "code" and cell.metadata.get("jupyter") != FOLDED:
            cell.metadata["jupyter"] = dict(FOLDED)
            changed = True
    return changed


def fold_md(path: Path) -> None:
    if not path.exists():
        return
    nb = jupytext.read(path)
    if fold_solutions(nb):
        path.write_text(jupytext.writes(nb, fmt="md:myst"), encoding="utf-8")   # newer: the pair follows it
        print(f"folded the solutions of {path.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    if argv:
        stems = sorted({(Path.cwd() / a).resolve().with_suffix("") for a in argv})
    else:
        nbdir = ROOT / "notebooks"
        stems = sorted({p.with_suffix("") for p in [*nbdir.glob("*.md"), *nbdir.glob("*.ipynb")]})
    if not stems:
        print("no notebooks to sync")
        return 0
    jupytext_cli = [sys.executable, "-m", "jupytext", "--quiet"]
    for stem in stems:
        md, ipynb = stem.with_suffix(".md"), stem.with_suffix(".ipynb")
        strip_ipynb(ipynb)
        fold_md(md)
        if md.exists():
            subprocess.run([*jupytext_cli, "--sync", str(md)], check=True)
        else:
            subprocess.run([*jupytext_cli, "--set-formats", "ipynb,md:myst", str(ipynb)], check=True)
        strip_ipynb(ipynb)
        clean_md(md)
        print(f"synced {md.relative_to(ROOT)} <-> {ipynb.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
