"""Checks on the chapter notebooks as files (they are executed by `pytest --nbval notebooks/`).

Each chapter is a MyST Markdown notebook ``notebooks/<name>.md`` (the source,
built into the book) paired by jupytext with ``notebooks/<name>.ipynb`` (for
nbval and Colab, committed without outputs). ``bash tools/sync_notebooks.sh``
repairs what these tests complain about, except the install cell and the toc.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MD_FILES = sorted(NOTEBOOKS.glob("*.md"))
IPYNB_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))

# Keys that Colab adds to a notebook or its cells; they belong in neither file,
# and above all not in the text file.
COLAB_NOTEBOOK_KEYS = {"colab", "accelerator", "gpuClass", "widgets"}
COLAB_CELL_KEYS = {"colab", "id", "outputId", "executionInfo", "colab_type"}

IN_COLAB = re.compile(r"""["']google\.colab["']\s+in\s+sys\.modules""")


def _ids(paths):
    return [p.name for p in paths]


def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    url = config["repository"]["url"]
    assert url.startswith("https://"), f"_config.yml repository.url looks wrong: {url!r}"
    return url.rstrip("/")


def _toc_files() -> list[str]:
    """Every ``file:`` entry of _toc.yml (plus the root), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [str(Path(f).with_suffix("")) if Path(f).suffix in {".md", ".ipynb"} else f for f in files]


def _cells(nb):
    """(cell type, source, tags) of every cell: what must agree between the pair."""
    return [(c.cell_type, c.source.rstrip("\n"), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def _first_code_cell(nb):
    return next((c for c in nb.cells if c.cell_type == "code"), None)


# --- the pair -----------------------------------------------------------------

def test_there_are_notebooks():
    assert MD_FILES, "no MyST notebooks in notebooks/"


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_md_has_paired_ipynb(md):
    assert md.with_suffix(".ipynb").exists(), (
        f"{md.name} has no paired {md.with_suffix('.ipynb').name}: run `bash tools/sync_notebooks.sh`")


@pytest.mark.parametrize("nb", IPYNB_FILES, ids=_ids(IPYNB_FILES))
def test_ipynb_has_paired_md(nb):
    assert nb.with_suffix(".md").exists(), (
        f"{nb.name} has no MyST source {nb.with_suffix('.md').name}: the .md is the source of truth")


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_pair_in_sync(md):
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip("no paired .ipynb (reported by test_md_has_paired_ipynb)")
    text_cells = _cells(jupytext.read(md))
    nb_cells = _cells(jupytext.read(ipynb))
    for i, (a, b) in enumerate(zip(text_cells, nb_cells)):
        assert a == b, (f"{md.name} and {ipynb.name} differ at cell {i}:\n  md:    {a!r:.300}\n"
                        f"  ipynb: {b!r:.300}\nrun `bash tools/sync_notebooks.sh`")
    assert len(text_cells) == len(nb_cells), (
        f"{md.name} has {len(text_cells)} cells, {ipynb.name} has {len(nb_cells)}: "
        "run `bash tools/sync_notebooks.sh`")


@pytest.mark.parametrize("nb", IPYNB_FILES, ids=_ids(IPYNB_FILES))
def test_ipynb_committed_without_outputs(nb):
    raw = json.loads(nb.read_text(encoding="utf-8"))
    for i, cell in enumerate(raw["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"{nb.name} cell {i} has outputs: run `bash tools/sync_notebooks.sh`"
        assert cell.get("execution_count") is None, (
            f"{nb.name} cell {i} has an execution count: run `bash tools/sync_notebooks.sh`")
    kernelspec = raw.get("metadata", {}).get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{nb.name}: kernelspec must be python3, got {kernelspec}"


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_md_header(md):
    nb = jupytext.read(md)
    formats = nb.metadata.get("jupytext", {}).get("formats", "")
    assert set(formats.split(",")) == {"ipynb", "md:myst"}, (
        f"{md.name}: jupytext header must declare `formats: ipynb,md:myst`, got {formats!r}")
    kernelspec = nb.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3" and kernelspec.get("language") == "python", (
        f"{md.name}: kernelspec must be python3 / python, got {kernelspec}")


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_md_has_no_colab_metadata(md):
    nb = jupytext.read(md)
    assert not COLAB_NOTEBOOK_KEYS & set(nb.metadata), (
        f"{md.name}: Colab metadata {sorted(COLAB_NOTEBOOK_KEYS & set(nb.metadata))} in the header")
    for i, cell in enumerate(nb.cells):
        bad = COLAB_CELL_KEYS & set(cell.metadata)
        assert not bad, f"{md.name} cell {i}: Colab metadata {sorted(bad)}"


# --- the Colab install cell ----------------------------------------------------

@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_first_code_cell_is_hidden_colab_install(md):
    cell = _first_code_cell(jupytext.read(md))
    assert cell is not None, f"{md.name} has no code cell"
    src = cell.source
    assert IN_COLAB.search(src), (
        f'{md.name}: the first code cell must install only in Colab (`if "google.colab" in sys.modules:`)')
    url = _repository_url()
    assert url in src, f"{md.name}: the install cell must install from {url} (_config.yml repository.url)"
    assert "remove-cell" in cell.metadata.get("tags", []), (
        f"{md.name}: tag the install cell `remove-cell` so the HTML hides it")


class _Recorder:
    """Stands in for IPython and subprocess: records commands instead of running them."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append(" ".join(map(str, args)) + " " + " ".join(map(str, kwargs.values())))
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")

    # the methods IPython's transformed magics call
    def run_line_magic(self, name, line, *args):
        self("%" + name, line)

    def run_cell_magic(self, name, line, cell):
        self("%%" + name, line, cell)

    def system(self, cmd):
        self("!", cmd)

    getoutput = system


def _run_install_cell(source, monkeypatch, in_colab: bool) -> list[str]:
    """Execute the install cell with every way of running a command recorded, not run."""
    import os
    import subprocess

    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(source)
    recorder = _Recorder()
    for name in ("run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"):
        monkeypatch.setattr(subprocess, name, recorder)
    monkeypatch.setattr(os, "system", recorder)
    if in_colab:
        google = types.ModuleType("google")
        google.colab = types.ModuleType("google.colab")
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(code, "<install cell>", "exec"), {"get_ipython": lambda: recorder, "__name__": "__main__"})
    return recorder.calls


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_install_cell_does_nothing_outside_colab(md, monkeypatch):
    cell = _first_code_cell(jupytext.read(md))
    if cell is None or not IN_COLAB.search(cell.source):
        pytest.skip("no Colab install cell (reported by test_first_code_cell_is_hidden_colab_install)")
    calls = _run_install_cell(cell.source, monkeypatch, in_colab=False)
    assert calls == [], f"{md.name}: the install cell runs {calls} outside Colab"
    calls = _run_install_cell(cell.source, monkeypatch, in_colab=True)
    assert any(_repository_url() in c and "install" in c for c in calls), (
        f"{md.name}: inside Colab the install cell should pip-install d2lssd from the repository, ran {calls}")


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_notebook_does_not_import_d2l(md):
    """d2l is a test-only reference (installed with --no-deps); Colab and readers do not have it."""
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(import\s+d2l\b|from\s+d2l\b)", cell.source, re.M), (
                f"{md.name} imports d2l; compare with d2lssd or with code written in the chapter")


# --- the table of contents -----------------------------------------------------

def test_toc_lists_every_notebook():
    listed = set(_toc_files())
    missing = [md.name for md in MD_FILES if f"notebooks/{md.stem}" not in listed]
    assert not missing, f"_toc.yml does not list {missing}"


def test_toc_files_exist():
    absent = [f for f in _toc_files()
              if not any((ROOT / f).with_suffix(ext).exists() for ext in (".md", ".ipynb"))]
    assert not absent, f"_toc.yml lists files that do not exist: {absent}"


@pytest.mark.parametrize("md", MD_FILES, ids=_ids(MD_FILES))
def test_solution_code_cells_are_folded(md):
    """In Jupyter the solutions start folded, as in the book (tools/sync_notebooks.py adds the metadata)."""
    nb = jupytext.read(md)
    inside = False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                inside = True
            if "{solution-end}" in cell.source:
                inside = "{solution-start}" in cell.source.rsplit("{solution-end}", 1)[1]
        elif inside and cell.cell_type == "code":
            assert cell.metadata.get("jupyter") == {"source_hidden": True, "outputs_hidden": True}, (
                f"{md.name} cell {i} is a solution's code but not folded: run `bash tools/sync_notebooks.sh`")
