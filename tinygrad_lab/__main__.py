"""``python -m tinygrad_lab ...`` is the ``tinygrad-lab`` command (see tinygrad_lab.lab.cli)."""

import sys

from tinygrad_lab.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
