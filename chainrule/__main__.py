"""``python -m chainrule``: the ``chainrule`` command."""

import sys

from chainrule.codegen.app.cli import main

sys.exit(main())
