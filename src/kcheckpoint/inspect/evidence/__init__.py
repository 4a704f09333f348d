"""Evidence handling: the SHA-256 manifest of every member and rootfs-diff file, its check
(``verify``), and safe extraction of members and rootfs-diff files.

May import: ``kcheckpoint.errors``, ``inspect.model`` and ``inspect.reader``.
"""
