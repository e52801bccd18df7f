"""Local CLI for graders: grade rollouts, run the pre-flight check, list presets and custom modules.

    python -m lambdas.reward grade  (--preset NAME | --spec JSON_OR_PATH) --input rollouts.jsonl [--json]
    python -m lambdas.reward verify (--preset NAME | --spec JSON_OR_PATH) --dataset rft.jsonl [--sample N] [--seed S]
                                    [--ideal ideal.jsonl]
    python -m lambdas.reward presets

``grade`` reads reward-Lambda request items, one JSON object a line (``-`` for
stdin), and prints each item's score and a summary. ``verify`` exits 1 with a
table when the grader is hackable or broken; ``--ideal`` gives responses known
to be right, one ``{"id": ..., "response": "..."}`` a line (ids of dataset rows).
Spec errors and unreadable ``--ideal`` lines exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from lambdas.reward.config import ConfigError, reward_function
from lambdas.reward.engine import RewardFunction
from lambdas.reward.presets import list_graders, load_grader
from lambdas.reward.spec import SpecError
from lambdas.reward.verify import verify_grader

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _spec_text(value: str) -> str:
    """``--spec`` is inline JSON or a path to a JSON file."""
    if value.lstrip().startswith("{"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"--spec {value!r} is neither inline JSON nor an existing file")
    return path.read_text(encoding="utf-8")


def _load(args: argparse.Namespace) -> RewardFunction:
    return reward_function(spec_text=_spec_text(args.spec) if args.spec else None, preset=args.preset)


def _lines(path: str) -> Iterator[tuple[int, str]]:
    handle: IO[str] = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line
    finally:
        if handle is not sys.stdin:
            handle.close()


def _json_lines(path: str) -> Iterator[object]:
    for _, line in _lines(path):
        try:
            yield json.loads(line)
        except ValueError:
            # An unparseable line is graded as what it is: not an object (a malformed item).
            yield line


def _format_metrics(metrics: list[Any]) -> str:
    return " ".join(f"{m.get('name')}={m.get('value'):.3g}" for m in metrics if isinstance(m, dict))


def _grade(args: argparse.Namespace, out: IO[str]) -> int:
    reward = _load(args)
    items = list(_json_lines(args.input))
    results, summary = reward.grade_batch_with_summary(items)
    if args.json:
        for result in results:
            out.write(json.dumps(result) + "\n")
    else:
        out.write(f"{'#':>5}  {'id':<24}{'score':>9}  metrics\n")
        for index, result in enumerate(results, 1):
            out.write(
                f"{index:>5}  {str(result['id'])[:23]:<24}{result['aggregate_reward_score']:>9.3f}  "
                f"{_format_metrics(result['metrics_list'])}\n"
            )
    low, high = reward.score_range

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    (sys.stderr if args.json else out).write(
        f"grader={reward.name} range=[{low:g}, {high:g}] count={summary.count} mean={fmt(summary.mean)} "
        f"min={fmt(summary.minimum)} max={fmt(summary.maximum)} malformed={summary.malformed}"
        + (f" {summary.malformed_reasons}" if summary.malformed_reasons else "")
        + (f" grader_errors={len(summary.grader_errors)}" if summary.grader_errors else "")
        + "\n"
    )
    return EXIT_OK


def _ideal_responses(path: str) -> dict[Any, str]:
    """``--ideal`` lines by row id; a line that is not ``{"id", "response": str}`` is a usage error."""
    found: dict[Any, str] = {}
    for number, line in _lines(path):
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("response"), str):
            raise ConfigError(f'{path}:{number}: expected {{"id": ..., "response": "..."}}')
        found[entry["id"]] = entry["response"]
    return found


def _verify(args: argparse.Namespace, out: IO[str]) -> int:
    reward = _load(args)
    ideal = _ideal_responses(args.ideal) if args.ideal else None
    report = verify_grader(reward, _json_lines(args.dataset), sample=args.sample, seed=args.seed, ideal=ideal)
    out.write(report.table() + "\n")
    return EXIT_OK if report.passed else EXIT_FAILED


def _presets(args: argparse.Namespace, out: IO[str]) -> int:
    for name in list_graders():
        preset = load_grader(name)
        out.write(f"{name} (v{preset.version}, {preset.spec.get('type')}): {preset.description}\n")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lambdas.reward", description="Nova RFT reward graders")
    commands = parser.add_subparsers(dest="command", required=True)

    def grader_source(command: argparse.ArgumentParser) -> None:
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--preset", help="a shipped preset or custom module name (see `presets`)")
        source.add_argument("--spec", help="an inline JSON spec or a path to a JSON spec file")

    grade = commands.add_parser("grade", help="score reward-Lambda request items from a JSONL file")
    grader_source(grade)
    grade.add_argument("--input", required=True, help="rollouts JSONL (one request item a line), '-' for stdin")
    grade.add_argument("--json", action="store_true", help="print the result items as JSON lines")
    grade.set_defaults(run=_grade)

    verify = commands.add_parser("verify", help="pre-flight: the reference must win, known hacks must lose")
    grader_source(verify)
    verify.add_argument("--dataset", required=True, help="RFT dataset JSONL")
    verify.add_argument("--sample", type=int, default=50, help="rows to sample (default 50)")
    verify.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    verify.add_argument("--ideal", help='JSONL of {"id", "response"}: responses known to be right, by row id')
    verify.set_defaults(run=_verify)

    presets = commands.add_parser("presets", help="list the shipped presets and the custom grader modules")
    presets.set_defaults(run=_presets)
    return parser


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args, out or sys.stdout)  # one of the command functions below
        return status
    except (SpecError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
