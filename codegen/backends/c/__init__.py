"""The C backend: the plan printed as C99. ``backend.py`` renders the files (the
registry's ``BACKEND``, the templates' contexts), ``storage.py`` places the arrays,
``variables.py`` names the loop counters, ``statements.py`` prints each statement as a
loop nest, ``gemm.py`` its CBLAS call where it is a matrix product; expressions through
``printer.py`` (a C99CodePrinter subclass), layout in ``templates/``. Loading:
``compiler.py`` finds and runs the C compiler, ``cache.py`` keeps the verified
libraries, ``loader.py`` wraps one behind the contract the library returns."""
