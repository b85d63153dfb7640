"""The applications that drive the library from outside it: the ``chainrule`` command
(``cli.py``) and ``chainrule check`` (``check.py``). Nothing below this floor imports it."""
