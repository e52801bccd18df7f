"""``python -m lambdas.reward``: the local grading and pre-flight CLI (see :mod:`lambdas.reward.cli`)."""

import sys

from lambdas.reward.cli import main

sys.exit(main())
