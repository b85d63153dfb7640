"""The NumPy backend: the plan printed as a standalone Python module (``backend.py``),
expressions through ``printer.py`` (a NumPyPrinter subclass), layout in ``templates/``."""
