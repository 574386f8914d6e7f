"""Per-language tree-sitter node types that context building and the symbol index look for.

One table per grammar: which nodes open a scope (and what kind), which are bodies, argument lists,
strings, comments, imports and identifiers. Kept as data so a test can check every name against
the grammar it belongs to. `SyntaxTable.functions` is the one list of function node types (the
context, the stages and the boundary rules all read it); `is_docstring` is the one docstring test
and `indent_unit` the one reading of a file's indentation unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node


@dataclass(frozen=True, slots=True)
class SyntaxTable:
    """Node types of one grammar, grouped by the role they play for context building."""

    scopes: dict[str, str]  # node type -> scope kind: class, function, namespace, impl
    blocks: frozenset[str]  # nodes whose children are statements or members
    arguments: frozenset[str]  # call argument lists
    strings: frozenset[str]
    comments: frozenset[str]
    interpolations: frozenset[str]  # code inside a string: ${x}, {x}
    imports: frozenset[str]  # import statements (searched at the top level)
    import_containers: frozenset[str]  # top-level nodes to look inside for imports
    identifiers: tuple[str, ...]  # leaf types that name things
    indent_unit: str = "    "  # the conventional unit when a file shows none
    opener: str = "{"  # the character that opens a block
    indent_sensitive: bool = False
    function_bodies: frozenset[str] = field(default_factory=frozenset)  # bodies that are functions

    @property
    def functions(self) -> frozenset[str]:
        """Node types of function-like scopes."""
        return frozenset(t for t, kind in self.scopes.items() if kind == "function")


_C_LIKE_STRINGS = frozenset({"string_literal", "char_literal", "system_lib_string"})

PYTHON = SyntaxTable(
    scopes={"class_definition": "class", "function_definition": "function"},
    blocks=frozenset({"module", "block"}),
    arguments=frozenset({"argument_list"}),
    strings=frozenset({"string"}),
    comments=frozenset({"comment"}),
    interpolations=frozenset({"interpolation"}),
    imports=frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    import_containers=frozenset({"if_statement", "try_statement", "block", "else_clause",
                                 "except_clause"}),
    identifiers=("identifier",),
    opener=":",
    indent_sensitive=True,
)

JAVASCRIPT = SyntaxTable(
    scopes={
        "class_declaration": "class", "class": "class",
        "function_declaration": "function", "generator_function_declaration": "function",
        "function_expression": "function", "generator_function": "function",
        "arrow_function": "function", "method_definition": "function",
    },
    blocks=frozenset({"program", "statement_block", "class_body", "switch_body"}),
    arguments=frozenset({"arguments"}),
    strings=frozenset({"string", "template_string", "regex"}),
    comments=frozenset({"comment"}),
    interpolations=frozenset({"template_substitution"}),
    imports=frozenset({"import_statement"}),
    import_containers=frozenset(),
    identifiers=("identifier", "property_identifier", "shorthand_property_identifier"),
    indent_unit="  ",
)

TYPESCRIPT = SyntaxTable(
    scopes={
        **JAVASCRIPT.scopes,
        "abstract_class_declaration": "class", "interface_declaration": "class",
        "internal_module": "namespace", "module": "namespace",
    },
    blocks=JAVASCRIPT.blocks | {"interface_body", "enum_body"},
    arguments=JAVASCRIPT.arguments,
    strings=JAVASCRIPT.strings,
    comments=JAVASCRIPT.comments,
    interpolations=JAVASCRIPT.interpolations,
    imports=JAVASCRIPT.imports,
    import_containers=frozenset(),
    identifiers=(*JAVASCRIPT.identifiers, "type_identifier"),
    indent_unit="  ",
)

GO = SyntaxTable(
    scopes={"function_declaration": "function", "method_declaration": "function",
            "func_literal": "function"},
    blocks=frozenset({"source_file", "block", "statement_list"}),
    arguments=frozenset({"argument_list"}),
    strings=frozenset({"interpreted_string_literal", "raw_string_literal", "rune_literal"}),
    comments=frozenset({"comment"}),
    interpolations=frozenset(),
    imports=frozenset({"import_declaration"}),
    import_containers=frozenset(),
    identifiers=("identifier", "field_identifier", "type_identifier", "package_identifier"),
    indent_unit="\t",
)

RUST = SyntaxTable(
    scopes={"function_item": "function", "closure_expression": "function",
            "impl_item": "impl", "trait_item": "class", "mod_item": "namespace"},
    blocks=frozenset({"source_file", "block", "declaration_list"}),
    arguments=frozenset({"arguments"}),
    strings=frozenset({"string_literal", "raw_string_literal", "char_literal"}),
    comments=frozenset({"line_comment", "block_comment"}),
    interpolations=frozenset(),
    imports=frozenset({"use_declaration", "extern_crate_declaration", "mod_item"}),
    import_containers=frozenset(),
    identifiers=("identifier", "field_identifier", "type_identifier"),
)

JAVA = SyntaxTable(
    scopes={
        "class_declaration": "class", "interface_declaration": "class",
        "enum_declaration": "class", "record_declaration": "class",
        "method_declaration": "function", "constructor_declaration": "function",
        "lambda_expression": "function",
    },
    blocks=frozenset({"program", "block", "class_body", "interface_body", "enum_body",
                      "constructor_body", "switch_block"}),
    arguments=frozenset({"argument_list"}),
    strings=frozenset({"string_literal", "character_literal"}),
    comments=frozenset({"line_comment", "block_comment"}),
    interpolations=frozenset(),
    imports=frozenset({"import_declaration"}),
    import_containers=frozenset(),
    identifiers=("identifier", "type_identifier"),
    function_bodies=frozenset({"constructor_body"}),
)

C = SyntaxTable(
    scopes={"function_definition": "function", "struct_specifier": "class",
            "union_specifier": "class"},
    blocks=frozenset({"translation_unit", "compound_statement", "field_declaration_list",
                      "preproc_ifdef", "preproc_if", "preproc_else"}),
    arguments=frozenset({"argument_list"}),
    strings=_C_LIKE_STRINGS,
    comments=frozenset({"comment"}),
    interpolations=frozenset(),
    imports=frozenset({"preproc_include"}),
    import_containers=frozenset({"preproc_ifdef", "preproc_if", "preproc_else"}),
    identifiers=("identifier", "field_identifier", "type_identifier"),
)

CPP = SyntaxTable(
    scopes={
        **C.scopes, "class_specifier": "class", "namespace_definition": "namespace",
        "lambda_expression": "function",
    },
    blocks=C.blocks | {"declaration_list"},
    arguments=C.arguments,
    strings=_C_LIKE_STRINGS | {"raw_string_literal"},
    comments=C.comments,
    interpolations=frozenset(),
    imports=frozenset({"preproc_include", "using_declaration"}),
    import_containers=C.import_containers,
    identifiers=(*C.identifiers, "namespace_identifier"),
)

TABLES: dict[str, SyntaxTable] = {
    "python": PYTHON, "javascript": JAVASCRIPT, "typescript": TYPESCRIPT, "tsx": TYPESCRIPT,
    "go": GO, "rust": RUST, "java": JAVA, "c": C, "cpp": CPP,
}

# Plain text: no tree, so only the indentation unit and the comment syntax matter.
PLAIN = SyntaxTable(
    scopes={}, blocks=frozenset(), arguments=frozenset(), strings=frozenset(),
    comments=frozenset(), interpolations=frozenset(), imports=frozenset(),
    import_containers=frozenset(), identifiers=(),
)


def is_docstring(statement: Node) -> bool:
    """True for a Python statement that is a bare string: a docstring when it comes first."""
    return (statement.type == "expression_statement" and statement.named_child_count == 1
            and statement.named_children[0].type in ("string", "concatenated_string"))


_LINE = re.compile(r"^([ \t]*)(\S.*?)[ \t\r]*$", re.MULTILINE)
_STEPS = (2, 3, 4, 8)


def indent_unit(text: str, table: SyntaxTable) -> str:
    """The file's indentation unit: tabs when most indented lines use them, else the most
    common step in from a line that opens a block (a continuation line's alignment is no
    indentation), else from any line; the language's default when the text shows none.

    The context and the stages take it from the cursor's `Hole`."""
    lines = _LINE.findall(text[-20_000:])
    tabs = sum(1 for indent, _ in lines if indent.startswith("\t"))
    if tabs and tabs * 2 >= sum(1 for indent, _ in lines if indent):
        return "\t"
    opened: dict[int, int] = {}
    anywhere: dict[int, int] = {}
    previous, opens = 0, False
    for indent, code in lines:
        step = len(indent) - previous
        if step in _STEPS:
            anywhere[step] = anywhere.get(step, 0) + 1
            if opens:
                opened[step] = opened.get(step, 0) + 1
        previous, opens = len(indent), code.endswith(table.opener)
    steps = opened or anywhere
    if not steps:
        return table.indent_unit
    return " " * max(steps, key=lambda w: (steps[w], -w))


def table_for(language: str) -> SyntaxTable:
    """The table of a canonical language name; the plain-text table when unknown."""
    return TABLES.get(language, PLAIN)


# Language families whose symbols may serve each other (a .ts file importing from a .js file).
FAMILIES: dict[str, str] = {
    "javascript": "js", "typescript": "js", "tsx": "js", "c": "c", "cpp": "c",
    "python": "python", "go": "go", "rust": "rust", "java": "java",
}
