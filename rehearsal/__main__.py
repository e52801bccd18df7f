"""``python -m rehearsal``: rehearse the whole pipeline offline and print where its record is.

Each setting is an option or, as ``make rehearse`` passes it, an environment variable (the option wins):

- ``REHEARSAL_OUT``: output folder (default ``.rehearsal/``): run.json, report.html,
  rehearsal.json (jobs, timeline, notifications), the rendered definition, the
  execution history and one log per function under ``logs/``;
- ``REHEARSAL_PLATFORM``: the road the run takes, ``sagemaker`` (default: SageMaker training and evaluation
  jobs, the checkpoint imported into Bedrock) or ``bedrock`` (``"platform": "bedrock"`` in the run input: SFT
  and RFT as Bedrock model customization jobs, evaluations through Bedrock inference on the base model and on
  on-demand deployments of the custom models);
- ``REHEARSAL_FAIL_AT``: inject a failure at ``preflight`` (a corrupt dataset row),
  ``sft``, ``rft``, ``eval``, ``import`` or ``deploy``; on the Bedrock road ``sft``/``rft`` make that
  customization job end ``Failed`` and ``eval`` makes the evaluated model answer ``ModelErrorException``;
- ``REHEARSAL_FAIL_EVAL_OF``: with ``REHEARSAL_FAIL_AT=eval``, the evaluation that fails:
  ``final`` (default), ``baseline`` or ``sft`` (these run beside training: their failure is
  recorded and training goes on);
- ``REHEARSAL_INPUT`` and ``REHEARSAL_DATA`` (``make rehearse INPUT=run.json DATA=folder/``): rehearse your own
  run input (a JSON file) instead of the generated one; each dataset URI of the input is served from the file
  of the same name in the ``DATA`` folder (default: the input file's folder);
- ``REHEARSAL_GPU_QUOTA``: the account's ``ml.p5.48xlarge for training job usage`` quota
  (default 8). Below 4 preflight stops the run; at 4 the jobs that run side by side take
  turns (the timeline shows the waits).
- ``REHEARSAL_RUNS``: how many runs, one after the other, against the same simulated
  account (default 1). The first creates the pipeline's deployment, each later one (whose
  final evaluation scores 0.02 higher, so it beats the champion) moves it to its model (the
  same deployment ARN) and retires models beyond the retention; a failure setting applies
  to the last run only. Without one, the rehearsal then rolls the deployment back to the
  previous run's model (``serving.rollback``). Run ``k``'s outputs go to
  ``<out>/run-<k>/``.
- ``REHEARSAL_APPROVAL``: rehearse a stack that requires approval before deployment (context
  ``approval=required``) and what the reviewer does when the run waits: ``approve`` (deployed),
  ``reject`` (recorded as REJECTED, nothing deployed) or ``expire`` (no decision: APPROVAL_EXPIRED after
  ``approvalTimeoutHours`` of simulated time). The reviewer writes ``approvals/<run-id>.json`` two simulated
  hours after the request, and its upload event runs the decision function. With several runs, the earlier
  ones are approved.
- ``REHEARSAL_ABORT_IN``: stop the execution (``StopExecution``: it ends ABORTED) once it enters the state of this
  name, e.g. ``"Run RFT customization job on Bedrock"``; the notify function then records the run and cleans
  up what it left (on the Bedrock road, the provisional deployments). moto's interpreter does not interrupt the
  state it is evaluating: a simulated job may reach its end before the stop lands (so the notifier finds it
  finished, not running), and a stop landing inside a task can end the execution FAILED (``States.Runtime``)
  instead of ABORTED.

Exit status (of the last run): 0 when the execution succeeded and deployed a model (or a dry run passed), 2 when it
succeeded without a deployment (gate rejection, deploy skipped), 1 otherwise;
64 for a setting it cannot use (and argparse's 2 for an unknown option).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from offline.synth import synthesize
from rehearsal import datasets
from rehearsal.runner import APPROVALS, Scenario, print_serving, print_summary, rehearse_runs
from rehearsal.simulators.faults import STAGES
from rehearsal.simulators.service_quotas import DEFAULT_QUOTAS
from stepfunctions import pipeline as workflow
from stepfunctions.asl import iter_states

EVALUATIONS = ("final", "baseline", "sft")
PLATFORMS = ("sagemaker", "bedrock")
MAX_RUNS = 5
RUN_GAIN = 0.02
GPU = "ml.p5.48xlarge"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rehearsal",
        description=(__doc__ or "").split("\n\n", 1)[0].replace("``", ""),
        epilog=(__doc__ or "").split("\n\n", 1)[-1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    environ = os.environ
    parser.add_argument("--out", default=environ.get("REHEARSAL_OUT") or ".rehearsal", help="REHEARSAL_OUT")
    parser.add_argument(
        "--platform", default=environ.get("REHEARSAL_PLATFORM") or "sagemaker", help="REHEARSAL_PLATFORM"
    )
    parser.add_argument("--fail-at", default=environ.get("REHEARSAL_FAIL_AT") or None, help="REHEARSAL_FAIL_AT")
    parser.add_argument(
        "--fail-eval-of", default=environ.get("REHEARSAL_FAIL_EVAL_OF") or "final", help="REHEARSAL_FAIL_EVAL_OF"
    )
    parser.add_argument(
        "--gpu-quota",
        default=environ.get("REHEARSAL_GPU_QUOTA") or str(int(DEFAULT_QUOTAS[GPU])),
        help="REHEARSAL_GPU_QUOTA",
    )
    parser.add_argument("--input", default=environ.get("REHEARSAL_INPUT") or None, help="REHEARSAL_INPUT")
    parser.add_argument("--data", default=environ.get("REHEARSAL_DATA") or None, help="REHEARSAL_DATA")
    parser.add_argument("--runs", default=environ.get("REHEARSAL_RUNS") or "1", help="REHEARSAL_RUNS")
    parser.add_argument("--approval", default=environ.get("REHEARSAL_APPROVAL") or None, help="REHEARSAL_APPROVAL")
    parser.add_argument("--abort-in", default=environ.get("REHEARSAL_ABORT_IN") or None, help="REHEARSAL_ABORT_IN")
    return parser.parse_args(argv)


def read_run_input(path: Path) -> tuple[dict | None, str | None]:
    """The run input in the JSON file ``path``, or why it cannot be read (file, line and column)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        return None, f"{path}: cannot read the run input ({error.strerror or error})"
    except UnicodeDecodeError as error:
        return None, f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
    except json.JSONDecodeError as error:
        return None, f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})"
    if not isinstance(value, dict):
        return None, f"{path}: a run input is a JSON object, got {type(value).__name__}"
    return value, None


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    out_dir = Path(args.out)
    if args.platform not in PLATFORMS:
        print(f"REHEARSAL_PLATFORM={args.platform!r}: expected one of {', '.join(PLATFORMS)}", file=sys.stderr)
        return 64
    fail_at = args.fail_at
    if fail_at is not None and fail_at not in STAGES:
        print(f"REHEARSAL_FAIL_AT={fail_at!r}: expected one of {', '.join(STAGES)}", file=sys.stderr)
        return 64
    fail_eval_of = args.fail_eval_of
    if fail_eval_of not in EVALUATIONS:
        print(f"REHEARSAL_FAIL_EVAL_OF={fail_eval_of!r}: expected one of {', '.join(EVALUATIONS)}", file=sys.stderr)
        return 64
    quota_text = str(args.gpu_quota)
    if not quota_text.isdigit():
        print(f"REHEARSAL_GPU_QUOTA={quota_text!r}: expected a whole number of instances", file=sys.stderr)
        return 64
    own_input, data_dir = None, None
    if args.input is not None:
        input_path = Path(args.input)
        own_input, problem = read_run_input(input_path)
        if problem:
            print(f"REHEARSAL_INPUT: {problem}", file=sys.stderr)
            return 64
        data_dir = Path(args.data) if args.data else input_path.parent
        files_problems = datasets.dataset_files(own_input, data_dir)[1]
        if files_problems:
            print("\n".join(f"REHEARSAL_DATA: {p}" for p in files_problems), file=sys.stderr)
            return 64
    elif args.data is not None:
        print("REHEARSAL_DATA: give the run input too (REHEARSAL_INPUT / --input)", file=sys.stderr)
        return 64
    runs_text = str(args.runs)
    if not runs_text.isdigit() or not 1 <= int(runs_text) <= MAX_RUNS:
        print(f"REHEARSAL_RUNS={runs_text!r}: expected a whole number of runs from 1 to {MAX_RUNS}", file=sys.stderr)
        return 64
    if args.approval is not None and args.approval not in APPROVALS:
        print(f"REHEARSAL_APPROVAL={args.approval!r}: expected one of {', '.join(APPROVALS)}", file=sys.stderr)
        return 64
    if args.abort_in is not None and args.abort_in not in {name for name, _ in iter_states(workflow.definition())}:
        print(
            f"REHEARSAL_ABORT_IN={args.abort_in!r}: no state of that name in the definition "
            "(stepfunctions/pipeline.asl.json)",
            file=sys.stderr,
        )
        return 64
    out = sys.stdout
    out.write("Synthesizing the CDK app (cdk-nag gate included)...\n")
    out.flush()
    quotas = {GPU: float(quota_text)}
    runs = int(runs_text)
    # Each later run's model scores a little higher, so it beats the deployed champion and moves the deployment.
    # The default road leaves the run input as it is (a user's own input: its own "platform", if any, decides)
    platform = None if args.platform == "sagemaker" else args.platform
    scenarios = [
        Scenario(quotas=quotas, final_gain=RUN_GAIN * k, replace_input=own_input, data_dir=data_dir, platform=platform)
        for k in range(runs)
    ]
    scenarios[-1].fail_at, scenarios[-1].fail_eval_of = fail_at, fail_eval_of
    scenarios[-1].abort_in = args.abort_in
    rollback = runs > 1 and fail_at is None and args.approval in (None, "approve")
    if args.approval is None:
        results = rehearse_runs(scenarios, out_dir=out_dir.resolve(), out=out, rollback=rollback)
    else:
        for scenario in scenarios:
            scenario.approval = "approve"
        scenarios[-1].approval = args.approval
        results = rehearse_runs(
            scenarios,
            synthesized=synthesize(context={"approval": "required"}),
            out_dir=out_dir.resolve(),
            out=out,
            rollback=rollback,
        )
    for result in results:
        print_summary(result, out)
    if runs > 1:
        print_serving(results, out)
    return results[-1].exit_code


if __name__ == "__main__":
    sys.exit(main())
