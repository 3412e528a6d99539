"""Lambda layer builds (see ``layers/build.py``): ``.venv/bin/python -m layers.build``."""
