"""``python -m d2lssd``: the package's command line (see :mod:`d2lssd.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
