"""``novactl``: prepare data, check and rehearse a run offline, then start, watch and manage runs on AWS.

Exit status: 0 ok; 1 problems found (invalid data or run input, a run or rehearsal that failed or did not
deploy, a rollback that did not complete, something a cleanup could not delete); 2 usage error (unknown
option, unreadable file, bad JSON, bad column mapping); 3 AWS refused a call or the stack is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from lambdas.pipeline.catalog import MODELS
from novactl import aws, check
from novactl import prepare as preparing

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_AWS = 0, 1, 2, 3
STACKOVERFLOW_SYSTEM = "You review Stack Overflow questions. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
Clients = Callable[[str], Any]


class UsageError(ValueError):
    """A file or option the command cannot use; the message names it."""


def _doc(text: str | None) -> tuple[str, str]:
    head, _, rest = (text or "").partition("\n\n")
    return head.replace("``", ""), rest.replace("``", "")


def read_json(path: str) -> dict[str, Any]:
    """The run input in ``path``, or a :class:`UsageError` naming the file, line and column."""
    from rehearsal.__main__ import read_run_input

    value, problem = read_run_input(Path(path))
    if problem or value is None:
        raise UsageError(problem or path)
    return value


def _lines(out: TextIO, lines: Sequence[str]) -> None:
    for line in lines:
        out.write(line + "\n")


# -- offline --------------------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    # A template typed in a shell holds "\n" as two characters: it means a line break.
    query = args.query.replace("\\n", "\n") if args.query else None
    response, system = args.response, args.system
    if args.stackoverflow:
        query = query or preparing.STACKOVERFLOW_QUERY
        response = response or "Y"
        system = system if system is not None or args.system_file else STACKOVERFLOW_SYSTEM
    if args.system_file:
        if system is not None:
            raise UsageError("--system and --system-file: give one")
        try:
            system = Path(args.system_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UsageError(f"--system-file {args.system_file}: {error.strerror or error}") from None
    if not query or not response:
        raise UsageError("--query and --response are required (or --stackoverflow for Title, Body and Y)")
    try:
        ratios = [float(part) for part in args.split.split(",")]
    except ValueError:
        raise UsageError(f"--split {args.split!r}: three numbers separated by commas, e.g. 0.4,0.4,0.2") from None
    source = Path(args.input)
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    mapping = preparing.Mapping(query=query, response=response, reference=args.reference, id=args.id)
    try:
        result = preparing.prepare(
            source,
            mapping,
            Path(args.out),
            system=system,
            ratios=ratios,
            seed=args.seed,
            eval_task=args.eval_task,
            model=args.model,
        )
    except preparing.PrepareError as error:
        _lines(sys.stderr, error.problems)
        return EXIT_USAGE
    for name, path in result.files.items():
        out.write(f"{name:<5} {result.rows[name]:>6} rows  {path}\n")
    _lines(out, [f"WARNING: {w}" for w in result.warnings])
    _lines(out, [f"PROBLEM: {p}" for p in result.problems])
    return EXIT_PROBLEMS if result.problems else EXIT_OK


def _validate(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    run_input = read_json(args.run_input)
    data_bucket = None
    local = check.LocalObjects(Path(args.data) if args.data else Path(args.run_input).parent)
    objects: check.LocalObjects | check.S3Objects = local
    options: dict[str, Any] = {"account": args.account, "pipeline_name": args.pipeline}
    if args.aws:
        from lambdas.pipeline import quotas
        from rehearsal.datasets import in_bucket

        stack = aws.stack_outputs(clients("cloudformation"), args.stack)
        data_bucket = stack.data_bucket
        records = check.S3Objects(clients("s3"))
        if args.data:
            run_input = in_bucket(run_input, data_bucket)  # the files start would upload, checked before upload
            local.records = records
        else:
            objects = records
        options.update(
            artifacts_bucket=stack.artifacts_bucket,
            account=args.account or clients("sts").get_caller_identity()["Account"],
            quota_lookup=quotas.service_quotas_lookup(clients("service-quotas")),
        )
    checked = check.validate(run_input, objects=objects, data_bucket=data_bucket, **options)
    _lines(out, check.summary_lines(checked))
    if checked.problems:
        out.write(f"{args.run_input}: {len(checked.problems)} problem(s) the pipeline would stop at:\n")
        _lines(out, [f"- {p}" for p in checked.problems])
        return EXIT_PROBLEMS
    out.write(f"{args.run_input}: no problems found (validation and preflight)\n")
    return EXIT_OK


def _rehearse(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    from rehearsal.__main__ import main as rehearsal_main

    argv = ["--input", args.run_input, "--out", args.out]
    if args.data:
        argv += ["--data", args.data]
    if args.gpu_quota is not None:
        argv += ["--gpu-quota", str(args.gpu_quota)]
    code = rehearsal_main(argv)
    return {0: EXIT_OK, 64: EXIT_USAGE}.get(code, EXIT_PROBLEMS)


# -- on AWS ---------------------------------------------------------------------------------------------


def _stack(args: argparse.Namespace, clients: Clients) -> aws.StackOutputs:
    return aws.stack_outputs(clients("cloudformation"), args.stack)


def _start(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    from rehearsal.datasets import dataset_files

    run_input = read_json(args.run_input)
    if args.dry_run:
        run_input["dryRun"] = True
    files: dict[str, Path] = {}
    if args.data:
        files, problems = dataset_files(run_input, Path(args.data))
        if problems:
            raise UsageError("\n".join(problems))
    stack = _stack(args, clients)
    arn, started = aws.start(
        run_input, files, stack=stack, s3=clients("s3"), sfn=clients("stepfunctions"), name=args.name
    )
    for key in files:
        out.write(f"uploaded s3://{stack.data_bucket}/{key}\n")
    out.write(f"started {arn}\n  input: {json.dumps(started)}\n")
    if args.watch:
        return EXIT_OK if aws.watch(clients("stepfunctions"), arn, out) == "SUCCEEDED" else EXIT_PROBLEMS
    out.write(f"follow it with: novactl watch {arn}\n")
    return EXIT_OK


def _watch(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    arn = args.execution
    if not arn.startswith("arn:"):
        machine = _stack(args, clients).state_machine_arn
        arn = machine.replace(":stateMachine:", ":execution:") + f":{arn}"
    status = aws.watch(clients("stepfunctions"), arn, out, interval=args.interval)
    return EXIT_OK if status == "SUCCEEDED" else EXIT_PROBLEMS


def _list(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    runs = aws.list_runs(clients("s3"), _stack(args, clients).artifacts_bucket, args.limit)
    _lines(out, [aws.run_line(run) for run in runs] or ["(no recorded runs)"])
    return EXIT_OK


def _show(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    run = aws.read_run(clients("s3"), _stack(args, clients).artifacts_bucket, args.run)
    if args.json:
        out.write(json.dumps(run.to_json(), indent=2) + "\n")
    else:
        _lines(out, aws.show_lines(run))
    return EXIT_OK


def _compare(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    bucket, s3 = _stack(args, clients).artifacts_bucket, clients("s3")
    _lines(out, aws.compare_lines([aws.read_run(s3, bucket, run_id) for run_id in args.runs]))
    return EXIT_OK


def _decision(decision: str) -> Callable[[argparse.Namespace, TextIO, Clients], int]:
    def run(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
        uri = aws.decide(clients("s3"), _stack(args, clients), args.run, decision, args.reason)
        out.write(f"{decision}: wrote {uri}\n")
        return EXIT_OK

    return run


def _rollback(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    from lambdas.pipeline import serving

    bucket, bedrock = _stack(args, clients).artifacts_bucket, clients("bedrock")
    before, rolled = aws.rollback(clients("s3"), bedrock, bucket, args.pipeline, args.to)
    out.write(
        f"deployment {rolled.deploymentArn} is moving from model {before.modelArn} (run {before.runId}) to model "
        f"{rolled.modelArn} (run {rolled.runId}); the champion record names run {rolled.runId}\n"
    )
    if not args.wait:
        out.write("it serves the previous model until the update completes (novactl rollback --wait waits for it)\n")
        return EXIT_OK
    done = aws.wait_for_deployment(
        bedrock, serving.rollback_deployment(rolled, before.modelArn), out, interval=args.interval
    )
    if done.status != "Active":
        reason = done.failureMessage or ("still updating when the checks ran out" if done.poll else done.status)
        out.write(f"PROBLEM: deployment {done.arn} did not move to {done.modelArn}: {reason}\n")
        return EXIT_PROBLEMS
    out.write(f"deployment {done.arn} now serves {done.modelArn} (run {rolled.runId})\n")
    return EXIT_OK


def _cleanup(args: argparse.Namespace, out: TextIO, clients: Clients) -> int:
    cloudformation = clients("cloudformation")
    bucket, s3 = aws.stack_outputs(cloudformation, args.stack).artifacts_bucket, clients("s3")
    retention = args.keep
    if retention is None:
        retention = aws.model_retention(cloudformation, clients("lambda"), args.stack, args.pipeline)
        source = "the deployed pipeline's modelRetention"
    else:
        source = "--keep"
    bedrock = clients("bedrock")
    plan = aws.cleanup_plan(s3, bedrock, bucket, args.pipeline, retention)
    champion = plan.champion
    out.write(
        f"keeping {retention} model(s) ({source}), the champion's (run {champion.runId}, {champion.modelArn}) "
        f"among them, and the deployment clients call ({champion.deploymentArn})\n"
    )
    if not plan.models and not plan.deployments:
        out.write("nothing to delete\n")
        return EXIT_OK
    _lines(out, plan.lines("deleting" if args.yes else "would delete"))
    if not args.yes:
        out.write("run again with --yes to delete them\n")
        return EXIT_OK
    failures = aws.cleanup(s3, bedrock, bucket, plan)
    _lines(out, [f"PROBLEM: {f}" for f in failures])
    return EXIT_PROBLEMS if failures else EXIT_OK


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of models, at least 1 (the deployed one)")
    return value


# -- the parser -----------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    head, tail = _doc(__doc__)
    top = argparse.ArgumentParser(
        prog="novactl", description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[..., int], help_text: str, *, on_aws: bool = False, data: str | None = None
    ) -> Any:
        """A subcommand; ``data`` (the help of ``--data``) makes it take a run input file and a data folder."""
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if data is not None:
            sub.add_argument("run_input", help="the run input (JSON file)")
            sub.add_argument("--data", help=data)
        if on_aws:
            sub.add_argument("--stack", default=aws.DEFAULT_STACK, help="the deployed stack (default %(default)s)")
            sub.add_argument(
                "--pipeline", default=check.PIPELINE, help="the stack's pipelineName (default %(default)s)"
            )
            sub.add_argument("--region", default=None, help="AWS region (default: the AWS CLI's configuration)")
        return sub

    sub = command(
        "prepare",
        _prepare,
        "CSV or JSONL in -> sft.jsonl (Converse, schemaVersion), rft.jsonl and eval.jsonl (gen_qa) in --out, split by "
        "ratios with a seed, checked as preflight checks them and for evaluation prompts that are also in training",
    )
    sub.add_argument("input", help="a CSV file (header row) or JSON Lines file")
    sub.add_argument("--out", default=".", help="folder for the three files (default: the current folder)")
    sub.add_argument("--query", help="the query column, or a template naming columns: 'Title: {Title}\\n{Body}'")
    sub.add_argument("--response", help="the column of the answer the model learns")
    sub.add_argument("--reference", help="the reference-answer column for RFT and evaluation (default: --response)")
    sub.add_argument("--system", help="a system prompt")
    sub.add_argument("--system-file", help="a file holding the system prompt")
    sub.add_argument("--id", help="the id column (default: row-<line>)")
    sub.add_argument("--split", default="0.4,0.4,0.2", help="sft,rft,eval ratios (default %(default)s)")
    sub.add_argument("--seed", type=int, default=0, help="shuffle seed (default %(default)s)")
    sub.add_argument("--eval-task", choices=("gen_qa", "rft_eval"), default="gen_qa", help="evaluation format")
    sub.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=preparing.DEFAULT_MODEL,
        help="the run input's model: its rules and base recipes' global_batch_size apply (default %(default)s)",
    )
    sub.add_argument(
        "--stackoverflow",
        action="store_true",
        help="the Stack Overflow question-quality mapping: query from Title and Body, response Y, a labelling prompt",
    )

    sub = command(
        "validate",
        _validate,
        "Every problem the pipeline's Validate run and Preflight checks states would report for a run input, the "
        "grader smoke test, dataset and leakage warnings, and the expected and worst-case cost and duration (per job "
        "and in all, as preflight records them); offline from a folder, or --aws from S3",
        on_aws=True,
        data="folder serving each dataset URI's file by name (default: the input's folder)",
    )
    sub.add_argument("--account", help="offline: the account whose escrow buckets resumeFrom may name")
    sub.add_argument(
        "--aws",
        action="store_true",
        help="check against the deployed stack: its data bucket, the account's GPU quotas and earlier run records; "
        "the datasets are read from S3, or from --data when given",
    )

    sub = command(
        "rehearse",
        _rehearse,
        "Run your run input and datasets through the real state machine on simulated AWS (no account); each dataset "
        "URI is served from the file of the same name in --data; same as make rehearse INPUT=... DATA=...",
        data="folder with the dataset files (default: the input's folder)",
    )
    sub.add_argument("--out", default=".rehearsal", help="output folder (default %(default)s)")
    sub.add_argument("--gpu-quota", type=int, default=None, help="simulated ml.p5.48xlarge quota (default 8)")

    sub = command(
        "start",
        _start,
        "Upload the datasets from --data to the stack's data bucket (same keys as the input's URIs) and start an "
        "execution of the stack's state machine",
        on_aws=True,
        data="folder with the dataset files to upload (omit when they are in S3 already)",
    )
    sub.add_argument("--name", help="execution name (default run-<UTC time>); the run id derives from it")
    sub.add_argument("--watch", action="store_true", help="then follow the execution as watch does")
    sub.add_argument(
        "--dry-run", action="store_true", help='set "dryRun": true: validation and preflight on AWS, no GPU'
    )

    sub = command("watch", _watch, "Print an execution's progress from its history until it ends", on_aws=True)
    sub.add_argument("execution", help="execution ARN, or name (in the stack's state machine)")
    sub.add_argument("--interval", type=float, default=30.0, help="seconds between polls (default %(default)s)")

    sub = command("list", _list, "Recorded runs (runs/<run-id>/run.json), newest first", on_aws=True)
    sub.add_argument("--limit", type=int, default=20, help="at most this many (default %(default)s)")

    sub = command(
        "show",
        _show,
        "One run: stages, metrics (± standard error, samples), gate and candidate, expected vs worst-case cost, "
        "dataset warnings, model and deployment",
        on_aws=True,
    )
    sub.add_argument("run", help="run id")
    sub.add_argument("--json", action="store_true", help="print run.json as recorded")

    sub = command(
        "compare",
        _compare,
        "The candidate metrics (± standard error, samples) of two or more runs side by side, with the candidate, "
        "the expected and worst-case cost and the deployment action",
        on_aws=True,
    )
    sub.add_argument("runs", nargs="+", metavar="RUN", help="run ids (two or more)")

    for decision in aws.DECISIONS:
        sub = command(
            decision,
            _decision(decision),
            f'Write approvals/<run-id>.json = {{"decision": "{decision}", "reason": ...}} to the data '
            "bucket: the decision a run waiting for approval receives",
            on_aws=True,
        )
        sub.add_argument("run", help="run id")
        sub.add_argument("--reason", required=True, help="why (kept with the decision)")

    sub = command(
        "rollback",
        _rollback,
        "Move the pipeline's deployment back to an earlier model of the champion history (Bedrock "
        "UpdateCustomModelDeployment: the deployment ARN clients call stays) and make that run the champion, as "
        "the pipeline writes it (only over the record read)",
        on_aws=True,
    )
    sub.add_argument("--to", metavar="RUN", help="the earlier run whose model to serve (default: the previous one)")
    sub.add_argument("--wait", action="store_true", help="then poll the deployment until it serves that model")
    sub.add_argument(
        "--interval", type=float, default=None, help="seconds between polls (default: 60, doubling, at most 600)"
    )

    sub = command(
        "cleanup",
        _cleanup,
        "List, and with --yes delete, what the pipeline no longer needs, as each run's record does: custom models "
        "of the champion history beyond the retention, and deployments other than the pipeline's; never the "
        "champion's model or deployment",
        on_aws=True,
    )
    sub.add_argument(
        "--keep",
        type=_at_least_one,
        default=None,
        help="models to keep, the champion's among them (default: the deployed pipeline's modelRetention)",
    )
    sub.add_argument("--yes", action="store_true", help="delete (without it, only list)")
    return top


def _boto3_clients(region: str | None) -> Clients:
    def make(service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=region)

    return make


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, clients: Clients | None = None) -> int:
    out = out or sys.stdout
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    handler: Callable[[argparse.Namespace, TextIO, Clients], int] = args.handler
    clients = clients or _boto3_clients(getattr(args, "region", None))
    try:
        data = getattr(args, "data", None)
        if data and not Path(data).is_dir():
            raise UsageError(f"--data {data}: no such folder (it holds the dataset files the run input names)")
        return handler(args, out, clients)
    except UsageError as error:
        print(f"novactl {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except aws.CommandError as error:
        print(f"novactl {args.command}: {error}", file=sys.stderr)
        return EXIT_AWS
    except Exception as error:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(error, ClientError | BotoCoreError):
            raise
        print(f"novactl {args.command}: AWS refused: {error}", file=sys.stderr)
        return EXIT_AWS


def main_exit() -> None:
    """The ``novactl`` console script."""
    sys.exit(main())
