"""The documentation a user reads: every relative link resolves, and nothing points at
documents a user does not have (the project's seeds and issues)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_DOC_PATH = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.md\b")
#: Mentions of the project's own planning documents, which a user does not have.
_PRIVATE = re.compile(r"\bseeds?\s+#?0*\d+\b|\bthe seed\b|\bseed's\b|\bissues?\s+#?\d+\b", re.I)


def _prose(path: Path) -> str:
    """The document without its fenced code blocks (a `# comment` there is not a heading)."""
    return _FENCE.sub("", path.read_text(encoding="utf-8"))


def anchors(path: Path) -> set[str]:
    """The `#fragment`s GitHub gives the headings of `path`: lower case, punctuation dropped,
    spaces as hyphens, `-1`, `-2`, ... on repeats."""
    seen: dict[str, int] = {}
    out = set()
    for title in _HEADING.findall(_prose(path)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_the_slugs_are_githubs() -> None:
    page = ROOT / "docs" / "tax.md"
    assert "rebal-propose---tax-aware" in anchors(page)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(_prose(doc)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        name, _, fragment = target.partition("#")
        file = (doc.parent / name).resolve() if name else doc
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading #{fragment} in {file.name}")
    assert broken == []


def test_every_docs_path_named_anywhere_exists() -> None:
    named = {
        (path.relative_to(ROOT), mention)
        for path in [*DOCS, *(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
        for mention in _DOC_PATH.findall(path.read_text(encoding="utf-8"))
    }
    assert sorted(str(p) + ": " + m for p, m in named if not (ROOT / m).exists()) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_refers_to_seeds_or_issues(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    found = [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for m in _PRIVATE.finditer(text)
    ]
    assert found == []


@pytest.mark.parametrize(
    "text", ["(seed 001)", "Seed 001's example", "the seed says", "see issue 4", "issues #12"]
)
def test_the_private_references_are_recognised(text: str) -> None:
    assert _PRIVATE.search(text)


@pytest.mark.parametrize("text", ["seed = 42", "the same seed gives the same market", "seeded"])
def test_a_random_seed_is_not_a_private_reference(text: str) -> None:
    assert not _PRIVATE.search(text)
