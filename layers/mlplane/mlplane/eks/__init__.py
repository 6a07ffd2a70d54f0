"""eks domain."""
