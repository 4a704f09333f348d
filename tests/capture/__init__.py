"""Helpers for the capture tests: a fake CRI runtime served over real gRPC."""
