"""The README's and the guides' links between documents land on a heading, and the guide's parts count 1, 2, 3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+\.md)?#([^)\s]+)\)")


def headings(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # a '# comment' in code
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped but '-' and '_', spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_to_a_section_lands_on_a_heading(document):
    for target, fragment in LINK.findall(document.read_text(encoding="utf-8")):
        linked = (document.parent / target).resolve() if target else document
        assert fragment in {anchor(h) for h in headings(linked)}, f"{document.name}: {target}#{fragment}"


def test_the_guides_numbered_parts_count_up():
    numbers = [int(m.group(1)) for h in headings(ROOT / "docs" / "guide.md") if (m := re.match(r"(\d+)\. ", h))]
    assert numbers == list(range(1, len(numbers) + 1))
