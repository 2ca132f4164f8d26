"""Every docs page the package's docstrings cite exists and is installed with the package."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cited_pages() -> set[str]:
    pages = set()
    for path in (ROOT / "python" / "flexrnn").rglob("*.py"):
        if "experiments" in path.parts:  # reproduction commands name the reports they write
            continue
        pages.update(re.findall(r"docs/([a-z_]+\.md)", path.read_text()))
    return pages


def test_cited_docs_exist_and_are_installed_with_the_package():
    pages = cited_pages()
    assert "models.md" in pages  # the docstrings do cite the equations
    cmake = (ROOT / "CMakeLists.txt").read_text()
    installed = re.search(r"install\(FILES (docs/.*?)DESTINATION flexrnn/docs\)", cmake, re.S)
    assert installed is not None
    installed_pages = set(re.findall(r"docs/([a-z_A-Z]+\.md)", installed.group(1)))
    for page in sorted(pages):
        assert (ROOT / "docs" / page).is_file(), page
        assert page in installed_pages, page


def test_no_page_points_at_the_unshipped_specs():
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("python", "docs")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".md") and re.search(r"specs/\w+\.md", p.read_text())
    ]
    readme = (ROOT / "README.md").read_text()
    assert offenders == [] and not re.search(r"specs/\w+\.md", readme)
