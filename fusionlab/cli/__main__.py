"""``python -m fusionlab.cli``."""

from fusionlab.cli import script

script()
