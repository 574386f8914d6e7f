"""LSP handlers: one method family per module, each with `register(server)`."""
