"""The notes: the derivation printed as LaTeX (``backend.py``, with ``printer.py``, a
LatexPrinter subclass, ``figure.py`` for the TikZ graph and ``words.py`` for the English
and Chinese text), built into PDFs by ``build.py``."""
