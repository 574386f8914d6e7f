"""Tree-sitter and pure code analysis (documents, scope, index, context, review, refactor): no
model, no network, no LSP types."""
