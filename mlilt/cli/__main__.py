"""``python -m mlilt.cli ...`` (what ``torchrun -m mlilt.cli adapt ...`` and the study's child runs start)."""

import sys

from mlilt.cli.main import main

sys.exit(main())
