"""Presentation: model objects -> text tables, trees, JSON and JSON Lines: where a field becomes a
cell. Never prints.

May import: ``kcheckpoint.inspect`` (its model records only), never ``_proto``, ``capture`` or
``cli``.
"""
