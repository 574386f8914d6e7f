"""The workspace index: definitions of every supported file (tag queries per language), by name,
kept up to date."""
