"""Presentation: turn model objects into text tables, trees, JSON and JSON Lines. Never prints."""
