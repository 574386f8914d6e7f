"""Token counting for prompt budgets: a cheap estimate by default, the model's tokenizer when known.

Every counter answers `count(text)`. Counts are cached by text in an LRU bounded in bytes, because
the same lines are counted again on every keystroke. No network here: the tokenizer is read from a
local tokenizer.json (a model directory or the file itself).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_CACHE_BYTES = 4_000_000
BYTES_PER_TOKEN = 3.5  # DeepSeek-Coder's BPE averages ~3.5 UTF-8 bytes per token on source code


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens a model would see for a piece of text."""

    name: str

    def count(self, text: str) -> int:
        """Number of tokens in `text` (no special tokens added)."""
        ...


class ByteLRU:
    """A str -> int cache bounded by the total size of its keys in bytes."""

    __slots__ = ("_bytes", "_data", "_lock", "limit")

    def __init__(self, limit: int = DEFAULT_CACHE_BYTES) -> None:
        self.limit = limit
        self._data: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> int | None:
        """The cached value, marked as recently used; None when absent."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: int) -> None:
        """Store a value, evicting the least recently used keys over the byte limit."""
        size = len(key) + 64  # str payload plus the entry's own overhead, roughly
        if size > self.limit:
            return
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self._data[key] = value
                return
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.limit and self._data:
                old, _ = self._data.popitem(last=False)
                self._bytes -= len(old) + 64

    @property
    def size_bytes(self) -> int:
        """Approximate bytes held by the keys."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)


class ApproxCounter:
    """UTF-8 bytes / 3.5, rounded up: no tokenizer needed, within ~15% on typical source code."""

    name = "approx"

    def __init__(self, bytes_per_token: float = BYTES_PER_TOKEN) -> None:
        self.bytes_per_token = bytes_per_token

    def count(self, text: str) -> int:
        """Estimated tokens in `text`."""
        if not text:
            return 0
        n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        return math.ceil(n / self.bytes_per_token)


class TokenizerCounter:
    """Exact counts from a Hugging Face `tokenizers` tokenizer.json, cached by text."""

    def __init__(self, path: str | os.PathLike[str],
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        from tokenizers import Tokenizer  # imported here: the approximate path needs nothing

        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        self.name = f"tokenizer:{file}"
        self._tokenizer = Tokenizer.from_file(str(file))
        self._cache = ByteLRU(cache_bytes)

    def count(self, text: str) -> int:
        """Exact tokens in `text`, without the BOS the tokenizer's template would add."""
        if not text:
            return 0
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        n = len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        self._cache.put(text, n)
        return n

    @property
    def cache(self) -> ByteLRU:
        """The count cache (exposed for tests and statistics)."""
        return self._cache


def counter_for(tokenizer: str | os.PathLike[str] | None) -> TokenCounter:
    """The tokenizer.json-backed counter for a file or model directory, else the estimate."""
    if tokenizer:
        file = Path(tokenizer)
        if (file / "tokenizer.json").is_file() or (file.is_file() and file.suffix == ".json"):
            try:
                return TokenizerCounter(file)
            except Exception:  # a corrupt tokenizer.json: fall back rather than fail the request
                return ApproxCounter()
    return ApproxCounter()
