"""Running vLLM for stagecoder: the `model serve` command line and process lifecycle, and the tiny
test checkpoint."""
