"""MySQL → stage → warehouse ingestion: table config, extract, stage, load, CLI."""
