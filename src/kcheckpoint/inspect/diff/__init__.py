"""``kcheckpoint diff``: what changed between two checkpoints, in processes, memory, open files,
sockets, filesystem, metadata and members.

May import: ``kcheckpoint.errors``, ``inspect.model``, ``inspect.reader`` and ``inspect.criu``.
"""

from __future__ import annotations

from .engine import DiffOptions, diff_archives
from .model import CheckpointDiff

__all__ = ["CheckpointDiff", "DiffOptions", "diff_archives"]
