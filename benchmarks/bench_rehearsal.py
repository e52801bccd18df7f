"""Wall time of the main job: ``python benchmarks/bench_rehearsal.py`` (also run by ``make bench``).

Runs ``python -m rehearsal`` (synthesis included) in a fresh interpreter and
fails when it takes 60 s or more; the measurement lives in ``rehearsal/bench.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rehearsal.bench import main

if __name__ == "__main__":
    sys.exit(main())
