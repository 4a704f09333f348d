"""kcheckpoint: capture, inspect, diff and search Kubernetes container checkpoints."""

from __future__ import annotations

#: The one place the version is set; pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = ["__version__"]
