"""Inline completion: the engine, FIM prompts, the model source, the staged pipeline and its
stages, the typing-through cache."""
