"""Names and scopes: which identifiers code uses and binds, what is visible at a position, a file's
imports, builtins and conventions."""
