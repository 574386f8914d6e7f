"""Chat-model work: rewrites of a selection and explanations of review findings."""
