"""Remote inputs and fan-out: archives read where they live, and many of them at once.

- ``inputs``: the reader's resolver for ``http(s)://``, ``s3://`` and any other fsspec URL,
  streamed, with the server's digest checked as the bytes go by;
- ``expand``: a capture service's listing, an object-store prefix, ``@FILE``, globs;
- ``tasks``: the per-archive work of summary, secrets, search and manifest, as plain data in
  and out (what a Dask worker runs);
- ``fanout``: those tasks in this process, or on Dask distributed (imported only there).

fsspec, s3fs and Dask are the optional extra ``kcheckpoint[fleet]``, imported only when a remote
name or a cluster is asked for. May import: ``kcheckpoint.errors``, ``kcheckpoint.inspect`` and
``kcheckpoint.oci``.
"""
