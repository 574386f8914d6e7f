"""Fake model backends for unit-level LSP tests (the real vLLM server has its own tests)."""
