"""One package per backend, each printing the same plan (or, for the notes, the same
derivation): ``numpy/``, ``c/`` and ``latex/``, each with its printer, its backend
module and its ``templates/``. Backends never import each other; see README.md here."""
