"""syno common package."""
