"""The click side of Touchlink: capture, enrichment, ingest and reports."""
