"""Write the state machine definition file from its description (``make asl``).

``python -m stepfunctions`` writes ``stepfunctions/pipeline.asl.json``;
``python -m stepfunctions --check`` changes nothing and exits 1 when the file is not what the
description generates (then run ``make asl`` and commit the result).
"""

from __future__ import annotations

import argparse
import sys

from stepfunctions.pipeline import DEFINITION_FILE, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepfunctions", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs; write nothing")
    args = parser.parse_args(argv)
    text = render()
    current = DEFINITION_FILE.read_text() if DEFINITION_FILE.exists() else ""
    if args.check:
        if current != text:
            print(f"{DEFINITION_FILE} is out of date: run `make asl`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        DEFINITION_FILE.write_text(text)
        print(f"wrote {DEFINITION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
