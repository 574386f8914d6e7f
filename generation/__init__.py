"""Everything that talks to a model: the client (model/), inline completion (completion/), chat
work (chat/), running vLLM (serving/) and the sparse attention plugin (sparse_attention/)."""
