"""Features: the data contracts turning hits and cells into tensors (pure array code)."""
