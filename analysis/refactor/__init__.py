"""Refactorings computed from the tree alone (no model): extract function."""
