"""`python -m gearshift.cli`: the `gearshift` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
