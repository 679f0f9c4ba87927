"""syno forecast service."""
