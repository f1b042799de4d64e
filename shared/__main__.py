"""`python -m shared <command>`: the product's command line (see `shared/cli.py`)."""

import sys

from shared.cli import entry

sys.exit(entry())
