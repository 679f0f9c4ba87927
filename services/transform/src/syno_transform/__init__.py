"""syno transform service."""
