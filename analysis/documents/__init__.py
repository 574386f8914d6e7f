"""Documents and files: text with its tree-sitter tree, languages, the open-document store, the
bounded reader, the file walker, trial parses, linear tree walks."""
