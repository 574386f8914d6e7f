"""Review: the rules (checks/), their findings and fixes, and the batch run behind `stagecoder
review` and diagnostics."""
