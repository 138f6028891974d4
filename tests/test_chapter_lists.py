"""Every chapter in _toc.yml is listed where the course lists its chapters.

Three places name the chapters and must not go stale when one is added: the
intro's "What the course covers" (a ``{doc}`` link per chapter), the README's
chapter table (the chapter's ``notebooks/<name>.md``) and the notation page's
table of the d2l names we keep (its chapter column links the chapter).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_chapters() -> list[str]:
    """The chapter notebooks of _toc.yml, as ``notebooks/<name>``, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(Path(node["file"]).with_suffix("")) if Path(node["file"]).suffix
                             else node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [f for f in files if f.startswith("notebooks/")]


CHAPTERS = _toc_chapters()


def _section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or a higher level."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"no heading {heading!r}"
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def _doc_links(text: str) -> set[str]:
    """Targets of {doc} roles, resolved to ``notebooks/<name>`` (from book/ or notebooks/)."""
    targets = set()
    for m in re.finditer(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", text):
        target = m.group(1).strip()
        targets.add(str(Path(target.replace("../", "", 1)).with_suffix("")) if target.startswith("../")
                    else target)
    return targets


def test_toc_has_chapters():
    assert CHAPTERS, "_toc.yml lists no notebooks/ chapters"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_intro_lists_the_chapter(chapter):
    covers = _section((ROOT / "book" / "intro.md").read_text(encoding="utf-8"), "What the course covers")
    assert chapter in _doc_links(covers), (
        f"book/intro.md, 'What the course covers', has no {{doc}} link to {chapter}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_readme_lists_the_chapter(chapter):
    table = _section((ROOT / "README.md").read_text(encoding="utf-8"), "Chapters so far")
    assert f"({chapter}.md)" in table, f"README.md, 'Chapters so far', does not list {chapter}.md"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notation_names_table_lists_the_chapter(chapter):
    names = _section((ROOT / "book" / "notation.md").read_text(encoding="utf-8"), "Names we keep from d2l")
    rows = [line for line in names.splitlines() if line.startswith("| `")]
    assert any(chapter in _doc_links(row.rsplit("|", 2)[-2]) for row in rows), (
        f"book/notation.md, 'Names we keep from d2l': no row whose chapter column links {chapter}")


def test_no_chapter_is_still_announced_as_coming():
    """A chapter that is in the book is not also 'being written' / 'coming next'."""
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    later = _section(intro, "What the course covers").split("**Still being written:**")
    if len(later) == 2:
        assert not _doc_links(later[1]) & set(CHAPTERS), "a built chapter is listed as still being written"
    assert "being written" not in _section(intro, "What SSD is")
