"""Everything that talks to a model: client, prompts, staged pipeline, serving, sparse attention."""
