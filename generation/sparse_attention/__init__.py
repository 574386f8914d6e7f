"""Training-free block-sparse decode attention for vLLM, loaded as a plugin (see README.md).

Importing this package imports nothing heavy: vLLM imports `plugin` at start-up, which reads
the environment and only then touches vLLM's registry.
"""
