"""The `syno` command."""
