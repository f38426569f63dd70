"""Filter predicates, one module each."""
