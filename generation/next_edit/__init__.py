"""Next-edit suggestions: edit history, prompt formats, diffing, staged checks, engine."""
