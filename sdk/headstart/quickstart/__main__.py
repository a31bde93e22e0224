"""``python -m headstart.quickstart``: see the package's docstring."""

import sys

from .jobs import main

sys.exit(main())
