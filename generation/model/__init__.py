"""Talking to a model server: the OpenAI-compatible client and its connection pools, the wire
types, the ModelError family."""
