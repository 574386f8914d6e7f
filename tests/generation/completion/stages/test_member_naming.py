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


FLAGGED = ("unresolved", "unknown self.zqxkvw")


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


def test_slots_are_members():
    src = ("class Point:\n    __slots__ = ('xpos', 'ypos')\n\n    def norm(self):\n"
           "        return █\n")
    assert naming_of(staged(src, "python", "self.ypos\n")) == ("kept", "all names resolve")
    cand = staged(src, "python", "self.yops\n")
    assert cand.text == "self.ypos"
    assert naming_of(cand) == ("repaired", "repaired self.yops -> self.ypos")


def test_reading_the_class_dict_leaves_the_members_known():
    # `'pattern' in cls.__dict__` reads the dict: no name is made at run time.
    src = ("class Template:\n    def __init_subclass__(cls):\n"
           "        if 'pattern' in cls.__dict__:\n            cls.flags = 1\n\n"
           "    def __init__(self, text):\n        self.template = text\n\n"
           "    def render(self):\n        return █\n")
    cand = staged(src, "python", "self.tempalte\n")
    assert cand.text == "self.template"
    assert naming_of(cand) == ("repaired", "repaired self.tempalte -> self.template")
    assert naming_of(staged(src, "python", "self.zqxkvw\n")) == FLAGGED


def test_setattr_on_another_object_leaves_the_members_known():
    src = ("class Loader:\n    def load(self, inst, state):\n        for k, v in state.items():\n"
           "            setattr(inst, k, v)\n        self.loaded = True\n\n    def f(self):\n"
           "        return █\n")
    assert naming_of(staged(src, "python", "self.zqxkvw\n")) == FLAGGED
    assert staged(src, "python", "self.laoded\n").text == "self.loaded"


def test_names_the_instance_dict_gets_by_literal_are_members():
    src = ("class Mixin:\n    def start(self):\n        vars(self).setdefault('_threads', [])\n"
           "        self.__dict__['started'] = True\n\n    def f(self):\n        return █\n")
    assert naming_of(staged(src, "python", "self._threads + [self.started]\n")) == (
        "kept", "all names resolve")
    cand = staged(src, "python", "self._thraeds\n")
    assert cand.text == "self._threads"
    assert naming_of(cand) == ("repaired", "repaired self._thraeds -> self._threads")
    assert naming_of(staged(src, "python", "self.zqxkvw\n")) == FLAGGED


def test_members_of_a_standard_library_c_type_without_instance_dict():
    # `_random.Random` instances have no __dict__: dir() lists every attribute they can have.
    src = "import _random\n\n\nclass Dice(_random.Random):\n    def roll(self):\n        return █\n"
    assert naming_of(staged(src, "python", "self.getrandbits(3)\n")) == (
        "kept", "all names resolve")
    cand = staged(src, "python", "self.getrandbist(3)\n")
    assert cand.text == "self.getrandbits(3)"
    assert naming_of(cand) == ("repaired", "repaired self.getrandbist -> self.getrandbits")
    assert naming_of(staged(src, "python", "self.zqxkvw\n")) == FLAGGED


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
    # vars(self) written, self.__dict__ handed to a function (it may write it)
    "class P:\n    def __init__(self, **kw):\n        vars(self).update(kw)\n\n"
    "    def f(self):\n        return █\n",
    "class P:\n    def __init__(self, d):\n        fill(self.__dict__, d)\n\n"
    "    def f(self):\n        return █\n",
    "class P:\n    def __init__(self, k):\n        self.__dict__[k] = 1\n\n"
    "    def f(self):\n        return █\n",
    # setattr on the class itself, inside or outside its body
    "class P:\n    def __init__(self, k):\n        setattr(type(self), k, 1)\n\n"
    "    def f(self):\n        return █\n",
    "class P:\n    def f(self):\n        return █\n\n\nfor k in 'ab':\n    setattr(P, k, 1)\n",
    # a C type whose instances hold a __dict__ (C code may add attributes to it)
    "import _io\n\n\nclass P(_io._BufferedIOBase):\n    def f(self):\n        return █\n",
])
def test_dynamic_members_are_never_flagged(src):
    cand = staged(src, "python", "self.zqxkvw\n")
    assert naming_of(cand) == ("kept", "all names resolve")


def test_a_class_whose_code_reads_members_nothing_defines_is_not_checked():
    # A template base: `self.rawdata` and the handlers come from subclasses outside the file.
    src = ("class ParserBase:\n    def reset(self):\n        self.lineno = 1\n\n"
           "    def parse_comment(self, i):\n        data = self.rawdata[i:]\n"
           "        return █\n")
    assert naming_of(staged(src, "python", "self.handle_decl(data)\n")) == (
        "kept", "all names resolve")
    # ... but one a sibling class of the file supplies is visible: the class is checked.
    sibling = src + "\n\nclass Parser(ParserBase):\n    def feed(self, data):\n" \
        "        self.rawdata = data\n"
    assert naming_of(staged(sibling, "python", "self.zqxkvw\n")) == FLAGGED
    # a class-level name of a sibling counts too, also in a file broken elsewhere
    for tail in ("", "\n\ndef broken():\n    return compute(1,\n"):
        sibling = src + "\n\nclass Parser(ParserBase):\n    rawdata = ''\n" + tail
        assert naming_of(staged(sibling, "python", "self.zqxkvw\n")) == FLAGGED


def test_members_the_completion_assigns_are_the_ones_the_class_reads():
    # Writing `__init__`: `url` reads `self.host`, which only the completion assigns.
    src = ("class Client:\n    def __init__(self, host):\n        █\n\n    def connect(self):\n"
           "        return 1\n\n    def url(self):\n        return self.host\n")
    cand = staged(src, "python", "self.host = host\n        self.conect()\n")
    assert cand.text == "self.host = host\n        self.connect()"
    assert naming_of(cand) == ("repaired", "repaired self.conect -> self.connect")
    cand = staged(src, "python", "self.host = host\n        print(self.hots)\n")
    assert naming_of(cand) == ("repaired", "repaired self.hots -> self.host")
    cand = staged(src, "python", "self.host, self.port = host, 80\n        self.conect()\n")
    assert naming_of(cand) == ("repaired", "repaired self.conect -> self.connect")
    # without it, something outside may supply `host` (and any other name): silent
    assert naming_of(staged(src, "python", "self.conect()\n")) == ("kept", "all names resolve")


def test_this_member_nothing_defines_leaves_a_javascript_class_unchecked():
    src = ("class Cmd {\n  constructor() { this.flags = {}; }\n  run() {\n"
           f"    this.npm.load();\n    return {CURSOR}\n  }}\n}}\n")
    assert naming_of(staged(src, "javascript", "this.zqxkvw;\n")) == ("kept", "all names resolve")
    known = src.replace("this.flags = {};", "this.flags = {}; this.npm = null;")
    assert naming_of(staged(known, "javascript", "this.zqxkvw;\n")) == (
        "unresolved", "unknown this.zqxkvw")


def test_the_member_being_typed_is_not_taken_for_the_class_code():
    # `self.` at the cursor, `self.size` on the next line: the tree reads `self.self.size`.
    src = ("class Box:\n    def __init__(self):\n        self.size = 0\n\n    def grow(self):\n"
           "        self.█\n        self.size += 1\n")
    cand = staged(src, "python", "siez * 2\n")
    assert cand.text == "size * 2"
    assert naming_of(cand) == ("repaired", "repaired self.siez -> self.size")


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


@pytest.mark.parametrize("util", [
    "from os.path import *\n\n\ndef helper():\n    pass\n",
    # an enum that puts its members into the module's globals
    "import enum\n\n\ndef helper():\n    pass\n\n\n"
    "enum.IntEnum._convert_('Mode', __name__, lambda n: n.startswith('MODE_'))\n",
    "import enum\n\n\n@enum.global_enum\nclass Mode(enum.IntFlag):\n    MODE_A = 1\n",
])
def test_a_workspace_module_with_run_time_names_is_not_checked(tmp_path: Path, util: str):
    files = {"util.py": util,
             "app.py": f"import util\n\n\ndef f():\n    return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "util.zqxkvw()\n")
    assert naming_of(cand) == ("kept", "all names resolve")


@pytest.mark.parametrize(("files", "typo", "fixed"), [
    # the base class in another file of the workspace
    ({"base.py": "class Command:\n    def __init__(self):\n        self.options = {}\n\n"
      "    def usage(self):\n        return ''\n",
      "app.py": "from base import Command\n\n\nclass Run(Command):\n    def go(self):\n"
      f"        return {CURSOR}\n"}, "self.optoins", "self.options"),
    # app.Channel(chat.Chat), chat.Chat(core.Dispatcher): `core` is chat.py's import.
    ({"core.py": "class Dispatcher:\n    def __init__(self):\n"
      "        self.connected = False\n",
      "chat.py": "import core\n\n\nclass Chat(core.Dispatcher):\n    def push(self, data):\n"
      "        self.buffer = data\n",
      "app.py": "import chat\n\n\nclass Channel(chat.Chat):\n    def go(self):\n"
      f"        return {CURSOR}\n"}, "self.conected", "self.connected"),
])
def test_members_of_a_base_class_in_another_workspace_file(tmp_path: Path, files: dict[str, str],
                                                           typo: str, fixed: str):
    cand = _staged_in_workspace(tmp_path, files, "app.py", typo + "\n")
    assert cand.text == fixed
    assert naming_of(cand) == ("repaired", f"repaired {typo} -> {fixed}")
    cand = _staged_in_workspace(tmp_path, files, "app.py", "self.zqxkvw\n")
    assert naming_of(cand) == ("unresolved", "unknown self.zqxkvw")


def test_members_a_base_gets_outside_its_body_are_members(tmp_path: Path):
    # `Node.visit = _visit` in the base's file: the subclass's file never mentions `visit`.
    files = {"tree.py": "class Node:\n    def __init__(self):\n        self.kids = []\n\n\n"
             "def _visit(node):\n    return node\n\n\nNode.visit = _visit\n",
             "app.py": "from tree import Node\n\n\nclass Leaf(Node):\n    def go(self):\n"
             f"        return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "self.visit()\n")
    assert naming_of(cand) == ("kept", "all names resolve")
    cand = _staged_in_workspace(tmp_path, files, "app.py", "self.zqxkvw\n")
    assert naming_of(cand) == FLAGGED


@pytest.mark.parametrize("head", [
    # an unclosed bracket in another function: the cursor's facts come from its unit alone
    "import shapes\n\n\ndef broken():\n    return compute(1,\n\n\n",
    # an unclosed bracket above the import: the file's tree swallows the import line
    "_pending = compute(1,\nimport shapes\n\n\n",
])
def test_imports_count_in_a_file_broken_elsewhere(tmp_path: Path, head: str):
    files = {"shapes.py": "class Shape:\n    def __init__(self):\n        self.side = 1\n",
             "app.py": head + "class Square(shapes.Shape):\n    def area(self):\n"
             f"        return {CURSOR}\n"}
    cand = _staged_in_workspace(tmp_path, files, "app.py", "self.sied * self.side\n")
    assert cand.text == "self.side * self.side"
    assert naming_of(cand) == ("repaired", "repaired self.sied -> self.side")


def test_a_member_a_subclass_in_the_workspace_defines_is_left_alone(tmp_path: Path):
    # A base class calling a method its subclasses supply (a template method).
    files = {"base.py": "class Command:\n    def run(self):\n        return █\n",
             "sub.py": "from base import Command\n\n\nclass Run(Command):\n"
             "    def execute_step(self):\n        return 1\n"}
    cand = _staged_in_workspace(tmp_path, files, "base.py", "self.execute_step()\n")
    assert naming_of(cand) == ("kept", "all names resolve")
