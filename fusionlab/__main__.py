"""``python -m fusionlab``."""

from fusionlab.cli import script

script()
