"""SC302 empty-handler: an except/catch (or Go `if err != nil`) block that does nothing."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Finding

_JS = "(catch_clause body: (statement_block) @body) @handler"
_GO = """
((if_statement
   condition: (binary_expression left: (identifier) @err operator: "!=" right: (nil))
   consequence: (block) @body) @handler
 (#match? @err "^err$|Err$|^err[A-Z]"))
"""
_NOTHING = frozenset({"pass_statement", "empty_statement"})


class EmptyHandler(Rule):
    """## What it does
    Finds error handlers with an empty body: a Python `except` whose block is only `pass` or
    `...`, a JavaScript/TypeScript `catch {}` block, a Go `if err != nil {}`. A handler holding
    a comment is taken as documented intent and not reported.

    ## Why is this bad?
    The error disappears: no log, no re-raise, no fallback. The program continues in a state
    its author did not consider, and the eventual failure points somewhere else.

    ## Example
    ```python
    try:
        config = load(path)
    except OSError:
        pass
    ```
    Use instead: handle it (`config = DEFAULTS`), log it, or say why it is safe to ignore
    (`# optional file: defaults apply`), or use `contextlib.suppress(OSError)`.

    ## Fix safety
    No automatic fix: what the handler should do is the author's decision.
    """

    code = "SC302"
    name = "empty-handler"
    summary = "an except/catch block (or Go `if err != nil`) that swallows the error"
    message = "{what} does nothing: the error is silently swallowed"
    queries = per_language({
        "python": "(except_clause) @handler",
        "javascript": _JS, "typescript": _JS, "tsx": _JS, "go": _GO,
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report handlers whose body has no statement and no comment."""
        for match in matches:
            ctx.check()
            handler = first(match, "handler")
            if handler is None:
                continue
            body = first(match, "body") or _python_block(handler)
            if body is None or not _empty(ctx, handler, body):
                continue
            what = {"python": "`except` handler", "go": "`if err != nil` block"}.get(
                ctx.language, "`catch` block")
            end = handler.end_byte
            if ctx.language == "python":  # the `except ...:` line, not the whole handler
                end = min(end, ctx.line_end(handler.start_byte)) or end
                end = end - 1 if ctx.source[end - 1 : end] == b"\n" else end
            yield ctx.finding(self, (handler.start_byte, end), self.message.format(what=what))


def _python_block(handler: Node) -> Node | None:
    return next((c for c in handler.named_children if c.type == "block"), None)


def _empty(ctx: Context, handler: Node, body: Node) -> bool:
    if ctx.language == "python":
        if ctx.line_comment_in(ctx.line_end(handler.start_byte), handler.end_byte):
            return False  # a comment in the block explains why nothing happens
        return all(
            c.type in _NOTHING or (c.type == "expression_statement" and ctx.text(c) == "...")
            for c in body.named_children
        )
    # Tree-sitter may attach a comment after the closing brace to the block: ignore those.
    close = max((c.start_byte for c in body.children if c.type == "}"), default=body.end_byte)
    return not any(c.type != "comment" or c.start_byte < close for c in body.named_children)


RULE = EmptyHandler()
