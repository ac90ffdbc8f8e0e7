"""The READMEs' examples work when copied as they are."""

import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import PROJECT

README_NAMES = ["README.md", "README.zh-CN.md"]


def blocks(name):
    """The Python code blocks of a README, in order."""
    text = (PROJECT / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("name", README_NAMES)
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
