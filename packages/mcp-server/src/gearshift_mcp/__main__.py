"""`python -m gearshift_mcp`: the `gearshift-mcp` command."""

import sys

from ._cli import main

sys.exit(main())
