"""syno activation service."""
