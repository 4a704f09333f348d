"""Checkpoint images: build an OCI image from an archive, write it as a layout or an
oci-archive, push it to a registry, and read one back as an input of every reading command.

``spec`` (media types, the engines' annotation keys, references) · ``build`` (the layer, config,
manifest and index, from one pass over the archive) · ``layout`` (layout directories and
oci-archives, both ways) · ``registry`` (the distribution API: auth, pull, push) · ``push``
(blobs, then manifest, then the tag) · ``content`` (index -> manifest -> layer, every step
checked against its digest) · ``inputs`` (the resolver the reader is given for image names).

May import: ``kcheckpoint.errors`` and ``kcheckpoint.inspect`` (the reader and its model).
"""
