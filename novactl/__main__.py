"""``python -m novactl``: the same command line as the ``novactl`` script."""

from __future__ import annotations

import sys

from novactl.cli import main

if __name__ == "__main__":
    sys.exit(main())
