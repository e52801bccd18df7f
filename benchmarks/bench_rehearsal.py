"""Wall time of the main job: ``python benchmarks/bench_rehearsal.py`` (also run by ``make bench``).

Runs ``python -m rehearsal`` (synthesis included) on each road (``--platform sagemaker`` and ``bedrock``) in
a fresh interpreter and fails when one takes 60 s or more or ends without a serving deployment; the
measurement lives in ``rehearsal/bench.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rehearsal.bench import main

if __name__ == "__main__":
    sys.exit(main())
