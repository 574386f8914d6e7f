"""Completion context: the hole at the cursor, prefix and suffix cut at statement boundaries,
related snippets, token budgets."""
