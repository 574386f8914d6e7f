"""DeepSeek-Coder FIM prompts: exact special tokens, layout, BOS, token counts, cache stability."""

from __future__ import annotations

import pytest

from analysis.context.builder import ContextBuilder
from analysis.context.tokens import ApproxCounter, TokenizerCounter, counter_for
from analysis.index.workspace_index import SymbolIndex
from analysis.settings import ContextSettings
from generation.completion.prompts import (
    BOS,
    EOS,
    FIM_BEGIN,
    FIM_END,
    FIM_HOLE,
    build_fim_prompt,
)
from generation.serving.tiny import train_tokenizer
from tests.analysis.context.context_cases import FIXTURES, document, load, place


@pytest.fixture(scope="module")
def index() -> SymbolIndex:
    built = SymbolIndex()
    built.build([FIXTURES])
    return built


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    """The tiny checkpoint's tokenizer (DeepSeek-Coder's special tokens, BOS template)."""
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer().save(str(path))
    return path


def test_special_tokens_are_spelled_exactly():
    assert FIM_BEGIN == "<\uff5cfim\u2581begin\uff5c>"
    assert FIM_HOLE == "<\uff5cfim\u2581hole\uff5c>"
    assert FIM_END == "<\uff5cfim\u2581end\uff5c>"
    assert BOS == "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
    assert EOS == "<\uff5cend\u2581of\u2581sentence\uff5c>"


def test_layout_related_first_then_file_then_hole(index):
    doc = load("python/shop/cart.py")
    ctx = ContextBuilder(index, ContextSettings()).build(doc, place(doc, "return apply_discount("))
    prompt = build_fim_prompt(ctx)
    text = prompt.text
    assert text.startswith(FIM_BEGIN + "# python/shop/pricing.py\ndef apply_discount(")
    assert text.endswith(ctx.suffix + FIM_END)
    assert text.count(FIM_BEGIN) == text.count(FIM_HOLE) == text.count(FIM_END) == 1
    assert BOS not in text  # the server's tokenizer adds it
    head, _, tail = text.partition(FIM_HOLE)
    assert head.endswith("# python/shop/cart.py\n" + ctx.prefix)
    assert tail == ctx.suffix + FIM_END
    # One header per file, even with several snippets from it.
    assert text.count("# python/shop/pricing.py\n") == 1
    assert prompt.stop[0] == EOS


@pytest.mark.parametrize(("file", "anchor", "header"), [
    ("go/main.go", "stock.Reorder(", "// stock/stock.go\n"),
    ("rust/src/main.rs", ".map(|s| area(", "// src/geometry.rs\n"),
    ("c/src/main.c", "ringbuf_push(", "// src/ringbuf.h\n"),
])
def test_path_comments_use_the_language_comment_syntax(file, anchor, header):
    language_root = FIXTURES / file.split("/")[0]
    index = SymbolIndex()
    index.build([language_root])
    doc = load(file)
    ctx = ContextBuilder(index, ContextSettings()).build(doc, place(doc, anchor))
    text = build_fim_prompt(ctx).text
    assert header in text
    assert f"// {file.split('/', 1)[1]}\n" in text


def test_prompt_start_is_stable_while_typing(index):
    """vLLM's prefix cache needs the prompt's start byte-identical from keystroke to keystroke."""
    body = "".join(f"    total += price_{i} * quantity_{i}\n" for i in range(400))
    doc = document("from shop.pricing import apply_discount\n\n\ndef checkout(total):\n" + body,
                   "python/shop/checkout.py", FIXTURES)
    builder = ContextBuilder(index, ContextSettings(budget_tokens=600))
    offset = place(doc, "    total += price_200 * quantity_200\n")
    texts = []
    for ch in "return apply_discount(total, 5":
        doc.replace_bytes(offset, offset, ch, doc.version + 1)
        offset += 1
        prompt = build_fim_prompt(builder.build(doc, offset))
        texts.append((prompt.text, prompt.stable_chars))
    heads = [text[:stable] for text, stable in texts]
    # Nothing before the cursor's line moves, except once: when the call's name is complete
    # (the word under the cursor counts once the cursor leaves it), its definition joins the
    # related snippets, and then it stays put.
    changes = [i for i in range(1, len(heads)) if heads[i] != heads[i - 1]]
    assert changes == [len("return apply_discount(") - 1]
    assert "def apply_discount(" not in heads[0] and "def apply_discount(" in heads[-1]


def test_tokenizer_adds_exactly_one_bos_and_counts_match(index, tokenizer_json):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    counter = TokenizerCounter(tokenizer_json)
    doc = load("python/shop/cart.py")
    ctx = ContextBuilder(index, ContextSettings(), counter).build(
        doc, place(doc, "return apply_discount("))
    prompt = build_fim_prompt(ctx, counter, exact=True)
    ids = tok.encode(prompt.text).ids  # as vLLM does: special tokens on
    assert ids.count(tok.token_to_id(BOS)) == 1 and ids[0] == tok.token_to_id(BOS)
    for marker in (FIM_BEGIN, FIM_HOLE, FIM_END):  # each marker is one token, not split
        assert ids.count(tok.token_to_id(marker)) == 1
    assert prompt.exact and prompt.tokens == len(ids)
    estimate = build_fim_prompt(ctx, counter)  # the cheap sum of the parts
    assert abs(estimate.tokens - prompt.tokens) <= prompt.tokens * 0.1
    assert ctx.tokens.counter.startswith("tokenizer:")


def test_token_counts_are_cached(tokenizer_json):
    counter = counter_for(tokenizer_json.parent)
    assert isinstance(counter, TokenizerCounter)
    assert counter.count("def f(x):\n    return x\n") == counter.count("def f(x):\n    return x\n")
    assert len(counter.cache) == 1
    assert isinstance(counter_for(None), ApproxCounter)
    assert isinstance(counter_for("/nonexistent/model"), ApproxCounter)
