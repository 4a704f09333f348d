"""The reader: bytes in, members out.

``source`` opens a path or stdin and detects compression by magic bytes (``zstdstream`` for
zstd); ``digest`` hashes on a worker thread, for this room and every other that hashes a
stream; ``archive`` walks the tar, seekable or forward-only, nested tars included; ``members``
names what each member is; ``engines`` reads pod, container and engine from the metadata
members; ``scan`` makes the one pass (``ArchiveScan``) that every command starts from.

May import: ``kcheckpoint.errors`` and ``inspect.model``. Knows nothing of CRIU images.
"""
