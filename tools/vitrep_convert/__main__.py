"""`python3 -m vitrep_convert` (from tools/): the converter's command line."""

import sys

from .cli import main

sys.exit(main())
