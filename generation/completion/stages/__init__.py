"""The three stages every completion passes: structure, naming, boundary checks."""
