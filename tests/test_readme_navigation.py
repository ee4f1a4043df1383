"""The README is long (over 4,000 lines): readers find their way by its contents line, its
headings and each long section's "In this section:" line. Every in-page link must land on
a heading, by the anchor GitHub gives it, so a renamed heading fails here, not for a reader."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
LINK = re.compile(r"\[([^\]]+)\]\(#([^)]+)\)")


def _prose_lines() -> list[str]:
    """The README's lines outside fenced code blocks (a `# comment` there is no heading)."""
    lines, fenced = [], False
    for line in README.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text (code spans and links as their text),
    lowercased, punctuation dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _headings() -> list[tuple[int, str, str]]:
    """(level, text, anchor) of every heading, in order; a repeated anchor gets -1, -2, ..."""
    seen: dict[str, int] = {}
    headings = []
    for line in _prose_lines():
        match = re.match(r"(#{1,6}) (.+?)\s*$", line)
        if match:
            slug = _slug(match[2])
            anchor = f"{slug}-{seen[slug]}" if slug in seen else slug
            seen[slug] = seen.get(slug, 0) + 1
            headings.append((len(match[1]), match[2], anchor))
    return headings


def test_slug_follows_githubs_rules() -> None:
    assert _slug("Cascade: check the answer, escalate when it fails") == (
        "cascade-check-the-answer-escalate-when-it-fails"
    )
    assert _slug("Which llama.cpp type (`benchmarks/quantization.py`, 2 cores)") == (
        "which-llamacpp-type-benchmarksquantizationpy-2-cores"
    )
    assert _slug("Loss ablation (seeds 0, 1, 2, mean +- std)") == (
        "loss-ablation-seeds-0-1-2-mean---std"
    )


def test_every_in_page_link_lands_on_a_heading() -> None:
    anchors = {anchor for _, _, anchor in _headings()}
    links = LINK.findall(README)
    assert links, "the README links none of its sections"
    broken = sorted({f"[{text}](#{target})" for text, target in links if target not in anchors})
    assert broken == [], "in-page links to no heading of the README"


def test_the_contents_line_links_every_section_in_order() -> None:
    """The contents line names each ``## `` section, in order, by its anchor."""
    sections = [(text, anchor) for level, text, anchor in _headings() if level == 2]
    contents = next(line for line in README.splitlines() if line.startswith("Contents: "))
    assert LINK.findall(contents) == sections


def test_each_section_with_subheadings_lists_them_under_its_heading() -> None:
    """A ``## `` section with ``### `` subheadings opens with one "In this section:" line
    that links each of them, in order."""
    lines = _prose_lines()
    headings = iter(_headings())
    sections: list[tuple[str, list[tuple[str, str]], str]] = []
    for index, line in enumerate(lines):
        if not re.match(r"#{1,6} ", line):
            continue
        level, text, anchor = next(headings)
        if level == 2:
            first = next((later for later in lines[index + 1 :] if later.strip()), "")
            sections.append((text, [], first))
        elif level == 3 and sections:
            sections[-1][1].append((text, anchor))
    assert sections
    for name, subheadings, first in sections:
        if not subheadings:
            continue
        assert first.startswith("In this section: "), f"'{name}' has no 'In this section:' line"
        assert LINK.findall(first) == subheadings, f"'{name}': its 'In this section:' line"
