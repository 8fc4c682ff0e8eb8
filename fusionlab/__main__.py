"""``python -m fusionlab``."""

import sys

from fusionlab.cli import main

sys.exit(main())
