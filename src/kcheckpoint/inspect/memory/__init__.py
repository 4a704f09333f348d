"""Analyses over process memory: ``search`` (literal or regex, hits mapped to pid and mapping),
``secrets`` (the secret scan of memory and files) and ``extract`` (a process's mappings to files).

Each streams pages through ``criu.walk``, the one reader of process memory.

May import: ``kcheckpoint.errors``, ``inspect.model``, ``inspect.rules``, ``inspect.reader`` and
``inspect.criu``.
"""
