"""Every relative link and #anchor in README.md, docs/*.md and benchmarks/*.md leads somewhere.

The README is a user's first read and docs/ holds the reference, so a moved section or a renamed heading must not
leave a dead link behind. Anchors follow GitHub's rule (lower case, punctuation dropped, spaces to hyphens, a
repeated heading gets -1, -2, ...), so a link that works here works on the repository page.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("benchmarks/*.md")])

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the target ends at the first space (an optional "title" may follow).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+).+?\1")
EXTERNAL = ("http://", "https://", "mailto:")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks: a `#` or a `[x](y)` inside a code block is code, not markdown."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its visible text, lower case, without punctuation, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading shows its text
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file, repeated headings numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> list[str]:
    """The link targets in a markdown file's prose (inline code and code blocks left out)."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets


def broken_links(path: Path) -> list[str]:
    """Each relative link of `path` whose file does not exist or whose #anchor is no heading of that file."""
    broken = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document):
    assert broken_links(document) == []


def test_the_user_documents_are_all_checked():
    names = {str(path.relative_to(ROOT)) for path in DOCUMENTS}
    assert {"README.md", "benchmarks/README.md", "docs/development.md"} <= names


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Two-Stage Real-ESRGAN → Swin2SR", "two-stage-real-esrgan--swin2sr"),
        ("Cluster (Ray)", "cluster-ray"),
        ("Measured (`benchmarks/bench_cluster.py`)", "measured-benchmarksbench_clusterpy"),
        ("Quality (PSNR dB / SSIM, Y channel)", "quality-psnr-db--ssim-y-channel"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert github_slug(heading) == anchor


def test_a_missing_file_a_missing_heading_and_a_repeated_heading_are_told_apart(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## Part\n\n## Part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[ok](other.md#part-1) [ok](#page) [ok](https://example.com/missing.md)\n"
        "[gone](missing.md) [no heading](other.md#part-2) ![no image](pic.png) [self](#nowhere)\n"
        "`[in code](missing-in-code.md)`\n"
        "```\n[in a block](missing-in-block.md)\n# not a heading\n```\n",
        encoding="utf-8",
    )
    assert anchors(tmp_path / "other.md") == {"title", "part", "part-1"}
    problems = broken_links(page)
    assert [problem.split(":")[0] for problem in problems] == ["missing.md", "other.md#part-2", "pic.png", "#nowhere"]
