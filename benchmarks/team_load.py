"""A team on one stagecoder: 50 editors typing against one `stagecoder proxy` and two replicas.

One proxy process (`stagecoder proxy`, as a team runs it) in front of two model endpoints (the
fake OpenAI-compatible server from the tests, each in its own process, streaming a completion
over ~0.1 s like a small model would). Each simulated editor has a file of its own and types
into it like a person: a keystroke every 80-250 ms, a pause of 0.5-2 s after each line; when no
keystroke has come for DEBOUNCE seconds the editor sends a FIM request for the text around the
cursor (as editors debounce), and a keystroke that comes before the answer cancels that request
(the editor closes the connection, as Zed and minuet do), so the proxy must abort its model
stream. After the run
the pending requests are waited for, the connections are given time to expire, and:
- server_p50_ms / server_p95_ms: the proxy's own time per completion (context, prompt, stages;
  model time excluded), from its /stagecoder/stats;
- client_p50_ms / client_p95_ms: what the editors waited for answered requests;
- requests, answered, cancelled (by the next keystroke), lost (an error, a non-200 answer or no
  answer within the deadline: must be 0);
- leaked_connections: connections still open at the model servers after the idle keep-alive
  (must be 0), and the proxy's own count of model connections in use;
- per-replica answers; rss_before_mb / rss_after_mb of the proxy process, and its CPU time per
  request (proxy_cpu_ms_per_request: what bounds the requests one proxy process can take).

    python benchmarks/team_load.py [--editors 50] [--seconds 60]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

FIM_BEGIN, FIM_HOLE, FIM_END = "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"
BODY = ("import math\n\n\ndef area_{n}(radius):\n    return math.pi * radius ** 2\n\n\n"
        "def perimeter_{n}(width, height):\n    ")
TYPED = "total = 2 * (width + height)\n    return total\n"
SUFFIX = "\n\n\nprint(area_{n}(2), perimeter_{n}(1, 2))\n"
ANSWER_DEADLINE = 30.0  # seconds: an answer later than this is lost
DEBOUNCE = 0.1  # seconds without a keystroke before an editor asks


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start(cmd: list[str], log: Path, cwd: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """Start a process that prints its address (or port) on its first line."""
    out = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=out, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


class Editor:
    """One simulated editor typing into its own file."""

    def __init__(self, number: int, url: str, rng: random.Random) -> None:
        self.number = number
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.rng = rng
        self.sent = self.answered = self.cancelled = 0
        self.lost: list[str] = []
        self.waits: list[float] = []

    async def run(self, until: float) -> None:
        """Type until `until` (loop time), then wait for the last request."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Task | None = None
        typed = 0
        while loop.time() < until:
            pause = self.rng.uniform(0.5, 2.0) if TYPED[typed - 1] == "\n" else 0.0
            await asyncio.sleep(pause + self.rng.uniform(0.08, 0.25))
            typed = (typed + 1) % len(TYPED)
            if pending is not None and not pending.done():
                pending.cancel()
            prefix = BODY.format(n=self.number) + TYPED[:typed]
            pending = asyncio.ensure_future(self.request(prefix, SUFFIX.format(n=self.number)))
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    async def request(self, prefix: str, suffix: str) -> None:
        """After the debounce, one completion request on a connection of its own; the
        connection closes if the next keystroke cancels it."""
        await asyncio.sleep(DEBOUNCE)
        self.sent += 1
        body = json.dumps({"model": "fake-deepseek",
                           "prompt": f"{FIM_BEGIN}{prefix}{FIM_HOLE}{suffix}{FIM_END}",
                           "max_tokens": 64}).encode()
        started = time.perf_counter()
        writer = None
        try:
            async with asyncio.timeout(ANSWER_DEADLINE):
                reader, writer = await asyncio.open_connection(*self.address)
                writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: proxy\r\n"
                             b"content-type: application/json\r\nconnection: close\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
                answer = await reader.read()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise  # the next keystroke: the connection closes below
        except (OSError, TimeoutError) as exc:
            self.lost.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            if writer is not None:
                writer.close()
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b"?"
        if status != b"200":
            self.lost.append(f"HTTP {status.decode()}: {answer[-200:]!r}")
            return
        self.answered += 1
        self.waits.append((time.perf_counter() - started) * 1e3)


async def load(url: str, editors: int, seconds: float, seed: int) -> list[Editor]:
    """Run the editors for `seconds`."""
    rng = random.Random(seed)
    crowd = [Editor(i, url, random.Random(rng.random())) for i in range(editors)]
    until = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(*(e.run(until) for e in crowd))
    return crowd


def fake_open(port: str) -> int:
    """Connections open now at a fake model server (its own count)."""
    stats = httpx.get(f"http://127.0.0.1:{port}/fake/stats", trust_env=False, timeout=10)
    return int(stats.json()["open"])


def main() -> int:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editors", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        fakes = [start([sys.executable, "-m", "tests.fakes.openai_server", "--port", "0",
                        "--mode", "trickle", "--delay", "0.01"], folder / f"fake{i}.log")
                 for i in range(2)]
        ports = [port for _, port in fakes]
        (folder / "pyproject.toml").write_text(
            "[tool.stagecoder.completion]\n"
            f'urls = ["http://127.0.0.1:{ports[0]}", "http://127.0.0.1:{ports[1]}"]\n'
            'model = "fake-deepseek"\n')
        proxy, line = start([sys.executable, "-m", "lsp_server", "proxy", "--tcp",
                             "127.0.0.1:0", "--config", str(folder / "pyproject.toml")],
                            folder / "proxy.log", cwd=folder)
        try:
            url = line.split("proxy serving at ", 1)[1].split()[0]
            process = psutil.Process(proxy.pid)
            httpx.get(f"{url}/health", trust_env=False, timeout=30)  # warm: first request
            rss_before = process.memory_info().rss / 2**20
            cpu_before = sum(process.cpu_times()[:2])
            print(f"{args.editors} editors typing for {args.seconds:g} s against {url} "
                  f"(replicas on ports {', '.join(ports)})")
            crowd = asyncio.run(load(url, args.editors, args.seconds, args.seed))
            cpu_s = sum(process.cpu_times()[:2]) - cpu_before
            time.sleep(5.0)  # past the 4 s keep-alive: idle connections are closed by now
            rss_after = process.memory_info().rss / 2**20
            stats = httpx.get(f"{url}/stagecoder/stats", trust_env=False, timeout=30).json()
            leaked = sum(fake_open(port) for port in ports)
        finally:
            proxy.terminate()
            proxy.wait(20)
            for fake, _ in fakes:
                fake.kill()
                fake.wait(10)
    lost = [why for e in crowd for why in e.lost]
    waits = [w for e in crowd for w in e.waits]
    server = stats["serverMs"]
    figures = {
        "editors": args.editors, "seconds": args.seconds,
        "requests": sum(e.sent for e in crowd), "answered": sum(e.answered for e in crowd),
        "cancelled": sum(e.cancelled for e in crowd), "lost": len(lost),
        "server_p50_ms": round(statistics.median(server), 2) if server else 0.0,
        "server_p95_ms": round(percentile(server, 0.95), 2),
        "client_p50_ms": round(percentile(waits, 0.5), 1),
        "client_p95_ms": round(percentile(waits, 0.95), 1),
        "leaked_connections": leaked,
        "proxy_model_connections_active": stats["modelConnections"].get("active", 0),
        "replica_answered": [r["answered"] for r in stats["replicas"]],
        "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_after, 1),
        "proxy_cpu_ms_per_request": round(cpu_s * 1e3 / max(1, sum(e.sent for e in crowd)), 2),
    }
    print(f"requests {figures['requests']}: answered {figures['answered']}, cancelled by the "
          f"next keystroke {figures['cancelled']}, lost {figures['lost']}")
    for why in sorted(set(lost))[:5]:
        print(f"  lost: {why}")
    print(f"server-side per request: p50 {figures['server_p50_ms']} ms, p95 "
          f"{figures['server_p95_ms']} ms (last {len(server)} requests); editors waited p50 "
          f"{figures['client_p50_ms']} ms, p95 {figures['client_p95_ms']} ms")
    print(f"replicas answered {figures['replica_answered']}; connections left open at the "
          f"model servers: {leaked}; proxy RSS {figures['rss_before_mb']} MB -> "
          f"{figures['rss_after_mb']} MB; proxy CPU {figures['proxy_cpu_ms_per_request']} ms "
          "per request")
    print(json.dumps(figures))
    return 0 if not lost and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
