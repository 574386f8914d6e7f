"""Tree-sitter and pure code analysis: documents, context, symbols, checks, findings."""
