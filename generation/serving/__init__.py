"""The model's lifecycle around vLLM: `model serve` (process lifecycle, LoRA and quantized
checkpoints), `model quantize` (INT8 compressed-tensors checkpoints), `model finetune` (LoRA on
the user's own code, FIM examples), and the tiny test checkpoint."""
