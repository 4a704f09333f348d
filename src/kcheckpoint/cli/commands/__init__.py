"""One module per CLI command, loaded on demand by ``cli.app`` (see ``cli/__init__.py``)."""
