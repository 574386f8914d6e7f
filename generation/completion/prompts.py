"""DeepSeek-Coder fill-in-the-middle prompts from a `CompletionContext`.

Layout (stable parts first, cursor-local parts last, so vLLM's prefix cache is reused while the
user types):

    <｜fim▁begin｜>{# path of snippet 1}\\n{snippet 1}\\n\\n...{# path of this file}\\n{prefix}
    <｜fim▁hole｜>{suffix}<｜fim▁end｜>

Each related snippet is a block headed by its path in its language's comment syntax, the way
DeepSeek-Coder saw repository files in pre-training. The special tokens are spelled exactly as in
the model's vocabulary (bars are U+FF5C, the `▁` is U+2581).

BOS: the prompt text carries no `<｜begin▁of▁sentence｜>`. DeepSeek-Coder's tokenizer adds it
itself (`add_bos_token: true`; the tokenizer.json post-processor prepends it) and vLLM's
/v1/completions tokenizes a text prompt with special tokens on, so the model sees exactly one
BOS. Writing it into the text as well would give two. `FimPrompt.tokens` counts that BOS.
"""

from __future__ import annotations

import msgspec

from analysis.context.builder import CompletionContext
from analysis.context.related import comment_syntax
from analysis.context.tokens import ApproxCounter, TokenCounter
from analysis.secrets import redact, redact_around

FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
# Stop strings for a FIM request: the model ends a fill with EOS; the markers never belong in code.
STOP = (EOS, FIM_BEGIN, FIM_HOLE, FIM_END)
SPECIAL_TOKENS = 4  # BOS + the three FIM markers, one token each


class FimPrompt(msgspec.Struct, frozen=True, rename="camel"):
    """A FIM prompt and what it is made of."""

    text: str  # exactly what goes into /v1/completions `prompt` (no BOS: the server adds it)
    stable_chars: int  # length of the leading part that does not depend on the cursor's line
    tokens: int  # prompt tokens including the BOS the server adds
    exact: bool  # True when `tokens` came from the model's tokenizer over the whole text
    stop: tuple[str, ...] = STOP


def related_block(ctx: CompletionContext) -> str:
    """The related snippets, grouped by file, each group headed by its path as a comment."""
    parts = []
    previous = None
    for snippet in ctx.related:
        if snippet.path != previous:
            parts.append(f"{comment_syntax(snippet.language)} {snippet.path}\n")
            previous = snippet.path
        parts.append(f"{redact(snippet.text, snippet.path).text}\n\n")
    return "".join(parts)


def file_header(ctx: CompletionContext) -> str:
    """The line naming the current file, in its comment syntax."""
    return f"{ctx.line_comment} {ctx.path}\n"


def build_fim_prompt(ctx: CompletionContext, counter: TokenCounter | None = None, *,
                     exact: bool = False) -> FimPrompt:
    """The FIM prompt for a context; `exact` tokenizes the whole text with `counter`."""
    head = FIM_BEGIN + related_block(ctx) + file_header(ctx)
    # The context came masked already; masking again here (cached, and a no-op on masked text)
    # makes the model's boundary safe for a context built any other way.
    prefix, suffix, _ = redact_around(ctx.prefix, ctx.suffix, ctx.path)
    text = f"{head}{prefix}{FIM_HOLE}{suffix}{FIM_END}"
    # The prefix up to the start of the cursor's line only changes when the prefix cut moves.
    line_start = prefix.rfind("\n") + 1
    stable = len(head) + line_start
    counter = counter or ApproxCounter()
    if exact and not isinstance(counter, ApproxCounter):
        tokens = counter.count(text) + 1
    else:
        tokens = (SPECIAL_TOKENS + ctx.tokens.related + counter.count(file_header(ctx))
                  + ctx.tokens.prefix + ctx.tokens.suffix)
    return FimPrompt(text, stable, tokens, exact and not isinstance(counter, ApproxCounter))
