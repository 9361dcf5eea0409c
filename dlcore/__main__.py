"""Entry point for ``python -m dlcore``."""

import sys

from dlcore.cli import main

sys.exit(main())
