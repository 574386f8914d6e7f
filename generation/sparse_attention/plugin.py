"""vLLM general-plugin entry point: register the sparse attention backend when it is switched on.

Declared in pyproject.toml under `vllm.general_plugins`. vLLM calls `register()` in every process
it starts, so registration is idempotent, and it does nothing (stock vLLM) unless
`STAGECODER_SPARSE_ATTENTION` holds JSON with `"enabled": true`. On CPU hosts vLLM always picks
CPU_ATTN, so the backend takes that slot; elsewhere it takes CUSTOM, chosen with
`--attention-backend CUSTOM`.
"""

from __future__ import annotations

import logging

from .config import ENV_VAR, config_from_env

BACKEND_PATH = "generation.sparse_attention.backend.SparseAttentionBackend"

# A child of the "vllm" logger, so messages go wherever vLLM sends its own.
logger = logging.getLogger("vllm.stagecoder_sparse_attention")


def register() -> str | None:
    """Register the backend if enabled; returns the enum member used, or None when left stock."""
    config, problems = config_from_env()
    for problem in problems:
        logger.warning("%s: %s", ENV_VAR, problem)
    if config is None:
        return None
    from vllm.platforms import current_platform
    from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend

    slot = AttentionBackendEnum.CUSTOM
    if current_platform.is_cpu():
        slot = AttentionBackendEnum.CPU_ATTN
    if slot.is_overridden() and slot.get_path() == BACKEND_PATH:
        return slot.name  # already registered in this process
    register_backend(slot, BACKEND_PATH)
    logger.info("stagecoder sparse attention registered as %s (%s)", slot.name, config)
    if slot is AttentionBackendEnum.CUSTOM:
        logger.info("pass --attention-backend CUSTOM to vLLM to use it")
    return slot.name
