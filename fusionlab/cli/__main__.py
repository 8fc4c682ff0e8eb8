"""``python -m fusionlab.cli``."""

import sys

from fusionlab.cli import main

sys.exit(main())
