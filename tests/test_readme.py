"""The READMEs and the docs pages: their examples work when copied as they
are, the two languages stay in step, their links lead somewhere, and the
README stays short enough to read to the end."""

import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import PROJECT

README_NAMES = ["README.md", "README.zh-CN.md"]
# The blueprint steps: docs/development.md and its Chinese twin.
DEVELOPMENT = ["docs/development.md", "docs/development.zh-CN.md"]
PAGES = sorted(PROJECT.glob("docs/*.md"))


def blocks(name):
    """The Python code blocks of a page, in order."""
    text = (PROJECT / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("name", DEVELOPMENT)
def test_the_blueprint_steps_give_code_that_passes_ruff_and_answers(project, name):
    code = blocks(name)
    orders = next(block for block in code if block.startswith("# app/orders.py"))
    imports, register = code[code.index(orders) + 1 : code.index(orders) + 3]
    (project / "app" / "orders.py").write_text(orders)
    # The app's modules are imported inside create_app(): the README's import
    # line takes the place of the one there, at its indentation.
    factory = project / "app" / "__init__.py"
    text = factory.read_text()
    line = re.compile(r"^( +)from app import .*\n", re.M)
    assert len(line.findall(text)) == 1, "one import line of the app's modules"
    indent = line.search(text)[1]
    text = line.sub(lambda _: textwrap.indent(textwrap.dedent(imports), indent), text)
    anchor = "    health.init_app(app)\n"
    assert anchor in text
    factory.write_text(text.replace(anchor, anchor + register))
    test = next(block for block in code if block.startswith("# tests/test_orders.py"))
    (project / "tests" / "test_orders.py").write_text(test)
    ruff = [sys.executable, "-m", "ruff"]
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [*ruff, *check, "app/__init__.py", "app/orders.py", "tests/test_orders.py"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    probe = "from wsgi import app; print(app.test_client().get('/orders/7').json)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True
    )
    assert result.stdout == "{'id': 7}\n", result.stderr
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*pytest, "tests/test_orders.py"], cwd=project, capture_output=True, text=True
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr


def test_the_readme_is_short_enough_to_read_to_the_end():
    for name in README_NAMES:
        assert len((PROJECT / name).read_text().splitlines()) <= 300, name


@pytest.mark.parametrize(
    "english", [*README_NAMES[:1], *(p for p in PAGES if ".zh-CN" not in p.name)]
)
def test_each_page_has_its_chinese_twin_in_step(english):
    english = PROJECT / english
    chinese = english.with_name(english.name.replace(".md", ".zh-CN.md"))
    en, zh = english.read_text(), chinese.read_text()

    def shape(text):
        """Its headings' levels, and the number of lines of each code block."""
        headings = re.findall(r"(?m)^(#{1,3}) ", text)
        code = re.findall(r"```\w*\n(.*?)```", text, re.S)
        return headings, [block.count("\n") for block in code]

    assert shape(en) == shape(zh), f"{english.name} and {chinese.name} differ"


@pytest.mark.parametrize("page", [PROJECT / n for n in README_NAMES] + PAGES)
def test_every_link_to_a_file_of_the_project_leads_to_one(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith(("http://", "https://")):
            assert (page.parent / target).exists(), f"{page.name}: {target}"
