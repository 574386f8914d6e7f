"""Members get the naming stage's rules: a misspelled member of `self`/`this`, of a class of the
file, of a base class or a module in the workspace index is repaired or reported; where the
object's members cannot be known (dynamic attributes, library bases, locals) nothing is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.documents.store import path_to_uri
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.names import KnownNames
from analysis.settings import StageSettings
from generation.completion.pipeline import Candidate, prepare_at, run_stages
from tests.generation.completion.stages.helpers import CURSOR, staged

CART = ("class Cart:\n    def __init__(self):\n        self.types = []\n        self.total = 0\n\n"
        "    def add(self, item):\n        █\n")


def naming_of(cand: Candidate) -> tuple[str, str]:
    decision = next(d for d in cand.decisions if d.stage == "naming")
    return decision.action, decision.detail


def test_misspelled_self_attribute_is_repaired():
    cand = staged(CART, "python", "self.typs.append(item)\n")
    assert cand.text == "self.types.append(item)"
    assert naming_of(cand) == ("repaired", "repaired self.typs -> self.types")
    assert cand.names_resolve


def test_unknown_self_attribute_is_reported_and_ranks_down():
    cand = staged(CART, "python", "self.zqxkvw.append(item)\n")
    assert cand.text == "self.zqxkvw.append(item)"
    assert naming_of(cand) == ("unresolved", "unknown self.zqxkvw")
    assert not cand.names_resolve


def test_attribute_the_completion_assigns_is_its_own():
    cand = staged(CART, "python", "self.count = 1\n        self.count += 1\n")
    assert naming_of(cand) == ("kept", "all names resolve")


def test_this_member_and_typescript_parameter_property_are_known():
    src = ("class Basket {\n  constructor(private items: number[]) {}\n  size() {\n"
           f"    return {CURSOR}\n  }}\n}}\n")
    cand = staged(src, "typescript", "this.itmes.length;\n")
    assert cand.text == "this.items.length;"
    assert naming_of(cand) == ("repaired", "repaired this.itmes -> this.items")


def test_members_of_a_base_class_in_the_file_count():
    src = ("class Base:\n    def describe(self):\n        return 'x'\n\n\nclass Cart(Base):\n"
           "    def show(self):\n        return █\n")
    assert staged(src, "python", "self.describe()\n").names_resolve
    cand = staged(src, "python", "self.descrbie()\n")
    assert cand.text == "self.describe()"


def test_members_of_a_builtin_base_class_count():
    src = "class Bag(dict):\n    def first(self):\n        return █\n"
    assert staged(src, "python", "self.keys()\n").names_resolve
    assert staged(src, "python", "self.kyes()\n").text == "self.keys()"


def test_members_of_a_class_named_in_the_file():
    src = ("class Config:\n    DEFAULTS = {}\n\n    @classmethod\n    def load(cls):\n"
           "        return cls()\n\n\ndef main():\n    return █\n")
    assert staged(src, "python", "Config.laod()\n").text == "Config.load()"


@pytest.mark.parametrize("src", [
    # __getattr__ answers any name
    "class P:\n    def __getattr__(self, name):\n        return 1\n\n    def f(self):\n"
    "        return █\n",
    # setattr makes attributes at run time
    "class P:\n    def __init__(self, **kw):\n        for k, v in kw.items():\n"
    "            setattr(self, k, v)\n\n    def f(self):\n        return █\n",
    # a base this reader cannot see (a library class)
    "import threading\n\n\nclass P(threading.Thread):\n    def f(self):\n        return █\n",
    "from enum import Enum\n\n\nclass P(Enum):\n    def f(self):\n        return █\n",
    # a metaclass may add anything
    "class P(metaclass=Registry):\n    def f(self):\n        return █\n",
    # self.__dict__ written directly
    "class P:\n    def __init__(self, d):\n        self.__dict__.update(d)\n\n"
    "    def f(self):\n        return █\n",
])
def test_dynamic_members_are_never_flagged(src):
    cand = staged(src, "python", "self.zqxkvw\n")
    assert naming_of(cand) == ("kept", "all names resolve")


def test_javascript_dynamic_and_unknown_bases_are_not_flagged():
    for head in ("class P extends Base {\n",
                 "class P {\n  constructor(o) { Object.assign(this, o); }\n"):
        src = head + f"  f() {{\n    return {CURSOR}\n  }}\n}}\n"
        assert naming_of(staged(src, "javascript", "this.zqxkvw;\n")) == (
            "kept", "all names resolve")


def test_this_inside_a_plain_nested_function_is_not_the_instance():
    src = ("class P {\n  items = [];\n  f() {\n    function inner() {\n"
           f"      return {CURSOR}\n    }}\n  }}\n}}\n")
    assert naming_of(staged(src, "javascript", "this.zqxkvw;\n")) == ("kept", "all names resolve")


def test_getattr_call_in_the_completion_is_not_a_member_use():
    cand = staged(CART, "python", "getattr(self, 'zqxkvw', None)\n")
    assert naming_of(cand) == ("kept", "all names resolve")


def test_a_local_that_shadows_a_module_is_not_that_module(tmp_path: Path):
    files = {"token.py": "def tokenize():\n    pass\n",
             "app.py": "import token\n\n\ndef f(token):\n    return █\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "token.endswith('x')\n")
    assert naming_of(cand) == ("kept", "all names resolve")


# ---------------------------------------------------------------- the workspace index


def _staged_in_workspace(root: Path, files: dict[str, str], name: str, raw: str) -> Candidate:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text.replace(CURSOR, ""), encoding="utf-8")
    index = SymbolIndex()
    index.build([root])
    source = files[name]
    offset = len(source[: source.index(CURSOR)].encode())
    path = root / name
    doc = Document(path_to_uri(path), source.replace(CURSOR, ""), "python")
    _, inputs = prepare_at(doc, offset, ContextBuilder(index), KnownNames())
    assert inputs is not None
    return run_stages(inputs, raw, StageSettings())


def test_members_of_a_workspace_module(tmp_path: Path):
    files = {"shop/__init__.py": "", "shop/pricing.py": "RATE = 2\n\n\ndef apply_discount(p):\n"
             "    return p * RATE\n",
             "app.py": f"from shop import pricing\n\n\ndef f(p):\n    return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "pricing.aply_discount(p)\n")
    assert cand.text == "pricing.apply_discount(p)"
    cand = _staged_in_workspace(tmp_path, files, "app.py", "pricing.zqxkvw(p)\n")
    assert naming_of(cand) == ("unresolved", "unknown pricing.zqxkvw")


def test_a_workspace_module_with_a_star_import_is_not_checked(tmp_path: Path):
    files = {"util.py": "from os.path import *\n\n\ndef helper():\n    pass\n",
             "app.py": f"import util\n\n\ndef f():\n    return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "util.zqxkvw()\n")
    assert naming_of(cand) == ("kept", "all names resolve")


def test_members_of_a_base_class_in_another_workspace_file(tmp_path: Path):
    files = {"base.py": "class Command:\n    def __init__(self):\n        self.options = {}\n\n"
             "    def usage(self):\n        return ''\n",
             "cmd.py": "from base import Command\n\n\nclass Run(Command):\n    def go(self):\n"
             f"        return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "cmd.py", "self.optoins\n")
    assert cand.text == "self.options"
    cand = _staged_in_workspace(tmp_path, files, "cmd.py", "self.zqxkvw\n")
    assert naming_of(cand) == ("unresolved", "unknown self.zqxkvw")


def test_a_member_a_subclass_in_the_workspace_defines_is_left_alone(tmp_path: Path):
    # A base class calling a method its subclasses supply (a template method).
    files = {"base.py": "class Command:\n    def run(self):\n        return █\n",
             "sub.py": "from base import Command\n\n\nclass Run(Command):\n"
             "    def execute_step(self):\n        return 1\n"}
    cand = _staged_in_workspace(tmp_path, files, "base.py", "self.execute_step()\n")
    assert naming_of(cand) == ("kept", "all names resolve")
