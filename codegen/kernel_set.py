"""The names a kernel set is made of, on the ground floor of codegen/: what every backend
renders (the seal's placeholder line) and what ``loader.py`` seals and checks.

A kernel folder's ``<net>.py``, ``<net>.c`` and ``<net>.h`` are one set; see
``loader.py`` for the seal itself. Backends import this module, never the loader,
which reaches the backends' own loaders.
"""

#: the files of one kernel set, ``<net>`` followed by each
KERNEL_SUFFIXES = (".py", ".c", ".h")

#: the header line a backend renders where the seal goes (after the comment's prefix)
SEAL_PLACEHOLDER = "Kernel set: unsealed"
