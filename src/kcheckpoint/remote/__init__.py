"""(Next) Remote inputs and fan-out: opening archives where they live (capture services, object
storage, registries) as file objects for the reader, and running the per-archive functions of
``inspect`` over many of them.

Nothing lives here yet. May import: ``kcheckpoint.errors``, ``kcheckpoint.inspect`` and
``kcheckpoint.oci``.
"""
