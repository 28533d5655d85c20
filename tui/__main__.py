"""`python -m tui`: the same as the `heapwatch` command."""

import sys

from tui.cli import main

sys.exit(main())
