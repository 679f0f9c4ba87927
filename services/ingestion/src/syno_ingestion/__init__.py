"""syno ingestion service."""
