"""Tree-sitter tag queries of the workspace symbol index, one `<language>-tags.scm` per grammar."""
