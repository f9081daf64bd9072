"""``python -m hubspot_sandbox --help``: the emulator on its own (see cli.py)."""

import sys

from hubspot_sandbox.cli import main

sys.exit(main())
