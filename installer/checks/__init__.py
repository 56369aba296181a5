"""Live checks."""
