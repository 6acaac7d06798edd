"""Several engines as one call center: partition ownership (see ownership.py)."""
