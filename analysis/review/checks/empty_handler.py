"""SC302 empty-handler: an except/catch (or Go `if err != nil`) block that does nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.checks._functions import enclosing_function
from analysis.review.findings import Finding

_JS = "(catch_clause body: (statement_block) @body) @handler"
_GO = """
((if_statement
   condition: (binary_expression left: (identifier) @err operator: "!=" right: (nil))
   consequence: (block) @body) @handler
 (#match? @err "^err$|Err$|^err[A-Z]"))
"""
_NOTHING = frozenset({"pass_statement", "empty_statement"})
# Python exceptions whose handler swallows everything (bugs included); a handler naming a
# specific exception (`except KeyError: pass`) says which failure it expects.
_BROAD = frozenset({"Exception", "BaseException"})
_LEAVES = frozenset({"return_statement", "raise_statement", "throw_statement",
                     "continue_statement", "break_statement"})
# Calls in a `try` body that make the test fail when no exception came: the handler is the pass.
_FAILS = re.compile(rb"\b(pytest\.fail|self\.fail|assert\.fail|expect\.fail|fail)\s*\(|"
                    rb"raise\s+AssertionError|assert\s+False\b")
# Helpers whose whole point is to ignore errors.
_IGNORING = re.compile(r"ignore_?errors|ignoring|safe_?call|suppress|silent|quiet|best_?effort",
                       re.I)


class EmptyHandler(Rule):
    """## What it does
    Finds error handlers that swallow every error with no sign of intent: a Python `except:`,
    `except Exception:` or `except BaseException:` whose block is only `pass` or `...`, a
    JavaScript/TypeScript `catch {}` block, a Go `if err != nil {}`.

    Not reported, because the code shows the error is expected: a handler naming a specific
    exception (`except KeyError: pass`); a comment in the handler, on its `except` line, or on
    the line above the `try` (`except OSError:  # not a terminal: fall back to 80`); a `try`
    with an `else` clause, or whose body ends in `return`/`continue`/`break`/`raise` (the
    "try this, else fall through to the next way" idiom); a test that expects the exception
    (`pytest.fail(...)`/`self.fail(...)` in the `try` body); and helpers named for ignoring
    errors (`*_ignore_errors`, `safecall`, `suppress...`).

    ## Why is this bad?
    The error disappears: no log, no re-raise, no fallback. The program continues in a state
    its author did not consider, and the eventual failure points somewhere else. A broad
    handler also hides plain bugs (`NameError`, `TypeError`) in the `try` body.

    ## Example
    ```python
    try:
        config = load(path)
    except Exception:
        pass
    ```
    Use instead: catch what you expect (`except OSError:`), handle it (`config = DEFAULTS`),
    log it, or say why it is safe to ignore (`# optional file: defaults apply`).

    ## Fix safety
    No automatic fix: what the handler should do is the author's decision.
    """

    code = "SC302"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "empty-handler"
    summary = "an except/catch block (or Go `if err != nil`) that swallows every error"
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
            if body is None or not _empty(ctx, handler, body) or _intended(ctx, handler):
                continue
            what = {"python": "`except` handler", "go": "`if err != nil` block"}.get(
                ctx.language, "`catch` block")
            end = handler.end_byte
            if ctx.language == "python":  # the `except ...:` line, not the whole handler
                end = min(end, ctx.line_end(handler.start_byte)) or end
                while end > handler.start_byte and ctx.source[end - 1 : end] in (b"\n", b"\r"):
                    end -= 1  # the range stops before the line break (LF or CRLF)
            yield ctx.finding(self, (handler.start_byte, end), self.message.format(what=what))


def _python_block(handler: Node) -> Node | None:
    return next((c for c in handler.named_children if c.type == "block"), None)


def _empty(ctx: Context, handler: Node, body: Node) -> bool:
    if ctx.language == "python":
        if ctx.line_comment_in(handler.start_byte, handler.end_byte):
            return False  # a comment on the `except` line or in the block explains it
        return all(
            c.type in _NOTHING or (c.type == "expression_statement" and ctx.text(c) == "...")
            for c in body.named_children
        )
    # Tree-sitter may attach a comment after the closing brace to the block: ignore those.
    close = max((c.start_byte for c in body.children if c.type == "}"), default=body.end_byte)
    return not any(c.type != "comment" or c.start_byte < close for c in body.named_children)


def _intended(ctx: Context, handler: Node) -> bool:
    """True when the code around the handler shows that swallowing the error is the plan."""
    if ctx.language == "go":
        return False
    if ctx.language == "python" and not _broad(handler):
        return True
    statement = handler.parent
    if statement is None or statement.type != "try_statement":
        return False
    above = ctx.line_start(statement.start_byte)
    if above > 0 and ctx.line_comment_in(ctx.line_start(above - 1), above):
        return True  # a comment on the line above the `try`
    if any(c.type == "else_clause" for c in statement.named_children):
        return True
    body = statement.child_by_field_name("body")
    if body is not None:
        statements = [c for c in body.named_children if c.type != "comment"]
        if statements and statements[-1].type in _LEAVES:
            return True  # falling out of the handler is the fallback path
        if _FAILS.search(ctx.source, body.start_byte, body.end_byte):
            return True  # a test that expects the exception
    fn = enclosing_function(ctx, handler)
    name = fn.child_by_field_name("name") if fn is not None else None
    return name is not None and bool(_IGNORING.search(ctx.text(name)))


def _broad(handler: Node) -> bool:
    """True for `except:`, `except Exception:`, `except BaseException as e:` and tuples
    holding one of them."""
    value = handler.child_by_field_name("value")
    if value is None:
        return not any(c.type in ("identifier", "attribute", "tuple", "as_pattern")
                       for c in handler.named_children)
    if value.type == "as_pattern" and value.named_children:
        value = value.named_children[0]
    names = value.named_children if value.type in ("tuple", "parenthesized_expression") \
        else [value]
    return any(n.text is not None and n.text.decode().rsplit(".", 1)[-1] in _BROAD
               for n in names)


RULE = EmptyHandler()
