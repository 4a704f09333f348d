"""(Next) Checkpoint images: build an OCI image from an archive, push it, and read one back,
through transports named as skopeo names them (``docker://``, ``oci:``, ``oci-archive:``).

Nothing lives here yet. May import: ``kcheckpoint.errors`` and ``kcheckpoint.inspect``.
"""
