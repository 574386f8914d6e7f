"""The shape of a rule and the per-file context that rules report through.

A rule is a small class: a stable `code` (SC1xx boundaries, SC2xx naming, SC3xx structure), a
kebab-case `name`, a `message`, a `fix_title`, the `fix_applicabilities` its fixes may have (a
test holds every fix a rule produces to that declaration), per-language tree-sitter `queries`,
and a `check` that turns the query's matches in one file into findings. The registry compiles
the queries of all rules for one language into a single query, so a file's tree is walked once
in C.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from tree_sitter import Node, Query, QueryCursor

from analysis.budget import Budget
from analysis.documents.document import Document
from analysis.documents.tree_walks import ancestors
from analysis.review.findings import Applicability, Finding, Fix, Location, Severity, TextRange

# Guards against pathological nesting (no real file comes close: the deepest of 32,000 files
# from PyPI and npm packages nests 570 levels; none needs 64 matches in progress).
MAX_NESTING = 1_000  # no match starts deeper than this many levels below the queried node
MATCH_LIMIT = 256  # tree-sitter drops the oldest in-progress match beyond this many

# One match of a rule's query: capture name (without the rule prefix) -> captured nodes.
Match = Mapping[str, list[Node]]

PYTHON = ("python",)
JAVASCRIPT = ("javascript",)
TYPESCRIPT = ("typescript", "tsx")
JS_FAMILY = JAVASCRIPT + TYPESCRIPT
GO = ("go",)


class Context:
    """One document under review: source access, finding construction and the time budget."""

    __slots__ = ("budget", "cache", "check", "document", "language", "newline", "root", "source")

    def __init__(self, document: Document, budget: Budget | None = None) -> None:
        self.document = document
        self.source = document.source
        self.language = document.language
        self.root = document.tree.root_node if document.tree is not None else None
        self.budget = budget if budget is not None else Budget(None)
        # `ctx.check()` raises OutOfTime once the budget is spent: rules call it once per match.
        self.check: Callable[[], None] = self.budget.check
        self.cache: dict[tuple[str, int], Any] = {}  # shared by rules: per-function facts
        # Fixes that insert lines use the document's own line ending (its first line break).
        self.newline = line_ending(self.source)

    def walk(self, node: Node, skip: frozenset[str] = frozenset()) -> Iterator[Node]:
        """`walk` that checks the budget at every node."""
        return walk(node, skip, self.check)

    def ancestors(self, node: Node) -> Iterator[Node]:
        """The ancestors of `node`, nearest first (linear in the depth, see
        analysis.documents.tree_walks)."""
        if self.root is not None:
            yield from ancestors(node, self.root)

    def text(self, node: Node) -> str:
        """The source text of a node."""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def location(self, offset: int) -> Location:
        """1-based line and code-point column of a byte offset."""
        pos = self.document.position_at(offset, "utf-32")
        return Location(pos.line + 1, pos.character + 1)

    def finding(
        self,
        rule: Rule,
        span: Node | tuple[int, int],
        message: str,
        fix: Fix | None = None,
    ) -> Finding:
        """A finding of `rule` over a node or a (start, end) byte span."""
        start, end = (span.start_byte, span.end_byte) if isinstance(span, Node) else span
        return Finding(
            code=rule.code,
            message=message,
            range=TextRange(start, end),
            location=self.location(start),
            end_location=self.location(end),
            severity=rule.severity,
            fix=fix,
        )

    def line_start(self, offset: int) -> int:
        """Byte offset of the start of the line holding `offset`."""
        return self.source.rfind(b"\n", 0, offset) + 1

    def line_end(self, offset: int) -> int:
        """Byte offset just past the line break of the line holding `offset` (or the end)."""
        nl = self.source.find(b"\n", offset)
        return len(self.source) if nl == -1 else nl + 1

    def line_comment_in(self, start: int, end: int) -> bool:
        """True when a line comment starts between two offsets (a cheap textual test)."""
        marker = (self.document.spec.line_comment if self.document.spec else "#").encode()
        return self.source.find(marker, start, end) != -1

    def indent_of(self, node: Node) -> str:
        """The whitespace before `node` on its line ("" when other text precedes it)."""
        start = self.line_start(node.start_byte)
        prefix = self.source[start : node.start_byte]
        return prefix.decode() if prefix.strip() == b"" else ""


class Rule:
    """Base class of every rule; subclasses set the class attributes and implement `check`.

    `queries` maps a language name to tree-sitter query source. Capture names are local to the
    rule (the registry prefixes them with the code), so two rules may both use `@name`.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for rule tables: what it finds
    message: ClassVar[str]  # a `str.format` template; fields are up to the rule
    fix_title: ClassVar[str | None] = None
    # Every applicability a fix of this rule may have (empty: the rule never offers a fix).
    fix_applicabilities: ClassVar[frozenset[Applicability]] = frozenset()
    severity: ClassVar[Severity] = Severity.WARNING
    # Off by default: the rule has not reached the precision bar on real code (see README
    # "Rules" and benchmarks/review_precision.py); `review.preview` or its exact code turns it on.
    preview: ClassVar[bool] = False
    unnecessary: ClassVar[bool] = False  # editors may grey the range out (LSP tag Unnecessary)
    queries: ClassVar[Mapping[str, str]]

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages this rule has a query for."""
        return tuple(self.queries)

    @property
    def fix_safety(self) -> str:
        """The declared applicabilities in words, for rule tables and SARIF: "safe", "unsafe",
        "safe or unsafe" or "none"."""
        order = [a for a in Applicability if a in self.fix_applicabilities]
        return " or ".join(a.value for a in order) or "none"

    def check(self, ctx: Context, matches: list[Match]) -> Iterable[Finding]:
        """Findings for one file, given every match of this rule's query in it."""
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        """The rule's documentation (its class docstring, dedented)."""
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")


def optional_chained(node: Node) -> bool:
    """True for `a?.b`, `a?.[0]`, `f?.()`: the JavaScript grammar marks them with an
    `optional_chain` node, the TypeScript grammar (for calls) with a bare `?.` token."""
    return any(c.type in ("optional_chain", "?.") for c in node.children)


def line_ending(source: bytes) -> str:
    """The line ending a document uses: that of its first line break ("\n" when it has none)."""
    nl = source.find(b"\n")
    return "\r\n" if nl > 0 and source[nl - 1 : nl] == b"\r" else "\n"


def bounded_cursor(query: Query) -> QueryCursor:
    """A query cursor with the guards against pathological nesting (MAX_NESTING, MATCH_LIMIT)."""
    cursor = QueryCursor(query, match_limit=MATCH_LIMIT)
    cursor.set_max_start_depth(MAX_NESTING)
    return cursor


def per_language(queries: Mapping[str, str]) -> Mapping[str, str]:
    """A rule's queries by language, read-only (rules are shared, immutable singletons)."""
    return MappingProxyType(dict(queries))


def first(match: Match, name: str) -> Node | None:
    """The first node captured as `name` in a match, or None."""
    nodes = match.get(name)
    return nodes[0] if nodes else None


def walk(node: Node, skip: frozenset[str] = frozenset(),
         tick: Callable[[], None] | None = None) -> Iterator[Node]:
    """Every named descendant of `node` (pre-order), not entering node types in `skip`;
    `tick` (a budget check) is called before each one."""
    stack = list(reversed(node.named_children))
    while stack:
        if tick is not None:
            tick()
        current = stack.pop()
        yield current
        if current.type not in skip:
            stack.extend(reversed(current.named_children))
