"""Tests that drive the pages in a real browser."""
