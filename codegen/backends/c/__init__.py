"""The C backend: the plan printed as C99 (``backend.py``), expressions through
``printer.py`` (a C99CodePrinter subclass), layout in ``templates/``; ``loader.py``
compiles, caches and wraps a kernel behind the NumPy module's contract."""
