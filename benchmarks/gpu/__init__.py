"""The prepared GPU check of the sparse attention backend (run.sh), runnable without vLLM."""
