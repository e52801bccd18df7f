"""Pre-flight checks: everything that can fail cheaply is checked before the first GPU starts.

1. The GPU cost estimate (instance type x count x maximum runtime x on-demand price,
   for every job the plan runs) against ``budget.maxUsd``; each job's estimated duration
   (:mod:`lambdas.pipeline.estimate`, from the datasets' row counts, the steps and the
   instances), the expected cost it gives, and a warning for every job whose maximum
   runtime is shorter than its estimate (it would be stopped unfinished); the account's GPU
   instance quotas (:mod:`lambdas.pipeline.quotas`): a job larger than its quota fails
   here; jobs that would contend for a quota are a warning in the summary.
2. Every dataset the plan uses, streamed from S3 and validated for its method with
   line numbers (:mod:`lambdas.pipeline.datasets`), in bounded memory, with the rules of the
   plan's model and at least one ``global_batch_size`` of rows for the job that reads it. While
   they stream, evaluation prompts found verbatim in the SFT or RFT data are counted
   (:mod:`lambdas.pipeline.leakage`): a warning, not a failure.
3. The grader smoke test: the reward service's :func:`verify_grader` against the
   *deployed* grader Lambda, with sample rows of the RFT (or ``rft_eval``) dataset.
4. Every dataset the jobs read is copied, at the object version that was validated, to
   its own folder under the run (``stagedUri``): ``runs/<run-id>/inputs/eval/gen_qa.jsonl``
   (the gen_qa evaluation reads a file of that name from its channel),
   ``runs/<run-id>/inputs/sft/sft.jsonl`` and ``runs/<run-id>/inputs/rft/rft.jsonl``. The jobs'
   channels point there, so a dataset replaced after validation, or a neighbour sharing its key
   prefix (``rft.jsonl.bak``), never reaches a job. ``copy`` is S3's managed server-side
   (multipart) copy: a multi-GB dataset never passes through the function. The one exception:
   SFT rows without ``schemaVersion`` gain ``"bedrock-conversation-2024"`` in the staged copy,
   which is then streamed through the function line by line (``schemaVersionAdded`` counts them).

On the Bedrock road (``plan.platform == "bedrock"``) there is no GPU: step 1 reads the account's Bedrock
quotas instead (:func:`lambdas.pipeline.quotas.check_bedrock_quotas`), step 2 applies Bedrock's record
limits and media rules to the training files, and the cost is priced in Bedrock's units
(:func:`bedrock_cost`: tokens trained x epochs, RFT training hours, model storage, inference tokens for
the evaluations) and checked against ``budget.maxUsd`` once the datasets' sizes are known.

Every problem is collected and raised as one :class:`PreflightError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lambdas.pipeline import bedrock_hyperparameters, recipes
from lambdas.pipeline import datasets as dataset_checks
from lambdas.pipeline import estimate as durations
from lambdas.pipeline import leakage as leakage_checks
from lambdas.pipeline import quotas as quota_checks
from lambdas.pipeline.catalog import BEDROCK_PRICES_SOURCE, bedrock_prices, hourly_price
from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGES
from lambdas.pipeline.s3uri import parse_s3_uri
from lambdas.pipeline.schema import (
    CostEstimate,
    CostItem,
    DatasetReport,
    GraderCase,
    GraderSmokeTest,
    LeakageSummary,
    Plan,
    PreflightSummary,
)

GRADER_SAMPLE_ROWS = 50
GRADER_BATCH_SIZE = 32


class PreflightError(ValueError):
    """Pre-flight found problems; the message lists every one, one per line. ``cost``: the estimate with what
    was read of the datasets."""

    def __init__(self, problems: list[str], cost: CostEstimate | None = None) -> None:
        self.problems = problems
        self.cost = cost
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{count} found before any training job started:\n" + "\n".join(f"- {p}" for p in problems))


class GraderInvocationError(RuntimeError):
    """The deployed grader returned a function error instead of a result list."""


# The dataset each stage's job reads.
STAGE_DATASETS = {"baselineEval": "eval", "sft": "sft", "sftEval": "eval", "rft": "rft", "finalEval": "eval"}
RUNTIME_FIELDS = {"sft": "sft", "rft": "rft", "eval": "evaluation"}


# Tokens from the datasets (docs/contracts/bedrock-customization.md, "Prices"): expected, about 4 characters of
# text per token; worst case, every byte of the file (JSON syntax included) counted as text at 3 bytes a token.
CHARS_PER_TOKEN = 4
WORST_BYTES_PER_TOKEN = 3


def bedrock_epochs(plan: Plan, method: str) -> int:
    """The epochs a Bedrock training job of ``method`` runs: the run's ``max_epochs``, else the documented default
    (both from the hyperparameter table, which gives every method an ``epochCount``)."""
    overrides = plan.jobs.of(method).overrides
    return int(float(bedrock_hyperparameters.resolve(method, plan.model.key, overrides)["epochCount"]))


def _charge(
    plan: Plan, stage: str, unit: str, price: float, worst: float, expected: float | None, basis: str
) -> CostItem:
    return CostItem.model_validate(
        {
            "stage": stage,
            "maxHours": round(plan.jobs.of(STAGE_METHODS[stage]).maxRuntimeSeconds / 3600, 2),
            "unit": unit,
            "unitUsd": price,
            "quantity": round(worst, 3),
            "expectedQuantity": None if expected is None else round(expected, 3),
            "usd": round(worst * price, 2),
            "expectedUsd": None if expected is None else round(min(expected, worst) * price, 2),
            "basis": basis,
        }
    )


def bedrock_cost(plan: Plan, reports: Mapping[str, DatasetReport] | None = None) -> CostEstimate:
    """The Bedrock road's cost in Bedrock's units: worst case and, once the datasets were read, expected.

    Per training stage: SFT tokens trained (worst: the file's bytes / 3 x epochs; expected: its text characters / 4
    x epochs) or RFT training hours (its maximum runtime: AWS publishes no RFT throughput), and one month of storage
    of the custom model it creates. Per evaluation, once ``reports`` gives the rows: input tokens (worst: the file's
    bytes / 3; expected: prompt characters / 4) and output tokens (worst: rows x ``max_new_tokens``; expected: the
    reference answers' characters / 4) at on-demand prices: the base model's for the baseline, a custom model's
    deployed on demand for the later evaluations (Nova 2 Lite's custom models have their own rates).
    """
    reports = reports or {}
    prices = bedrock_prices(plan.model.key)
    items: list[CostItem] = []
    notes = [f"prices: {BEDROCK_PRICES_SOURCE}"]
    notes += [
        f"{name} of {plan.model.key} (${getattr(prices, name):g}) is not a published price: {why}"
        for name, why in prices.unconfirmed.items()
    ]
    for stage in STAGES:
        if not plan.enabled.runs(stage):
            continue
        method = STAGE_METHODS[stage]
        if method == "sft":
            dataset = plan.datasets.require("sft")
            epochs = bedrock_epochs(plan, "sft")
            report = reports.get("sft")
            worst = dataset.sizeBytes / WORST_BYTES_PER_TOKEN * epochs / 1000
            expected = None if report is None else report.textChars / CHARS_PER_TOKEN * epochs / 1000
            basis = f"{epochs} epoch(s) of {dataset.sizeBytes:,} bytes" + (
                "" if report is None else f", {report.textChars:,} characters of text"
            )
            items.append(_charge(plan, stage, "1K tokens trained", prices.sft_per_1k_tokens, worst, expected, basis))
        elif method == "rft":
            if prices.rft_per_hour is None:
                notes.append(f"RFT not priced: Bedrock offers no RFT for {plan.model.key}")
                continue
            # Bedrock bills RFT per training hour, not per token: the data's size does not enter the charge.
            hours = plan.jobs.of("rft").maxRuntimeSeconds / 3600
            basis = "its maximum runtime: AWS publishes no RFT throughput to expect less from"
            items.append(_charge(plan, stage, "training hour", prices.rft_per_hour, hours, hours, basis))
        if method in ("sft", "rft"):
            basis = "the custom model it creates, its first month; billed monthly for as long as it is kept"
            items.append(_charge(plan, stage, "model-month stored", prices.storage_per_month, 1, 1, basis))
            continue
        report = reports.get("eval")
        if report is None:
            continue
        dataset = plan.datasets.require("eval")
        template = recipes.load_template(plan.model.key, "eval")
        max_tokens = int(plan.jobs.eval.overrides.get("max_new_tokens", template.default("max_new_tokens")))
        prompt_chars = report.textChars - report.answerChars
        # The baseline calls the base model; the later evaluations a custom model deployed on demand.
        input_price, output_price = prices.inference(custom=stage != "baselineEval")
        items.append(
            _charge(
                plan,
                stage,
                "1K input tokens",
                input_price,
                dataset.sizeBytes / WORST_BYTES_PER_TOKEN / 1000,
                prompt_chars / CHARS_PER_TOKEN / 1000,
                f"{report.rows:,} prompts, {prompt_chars:,} characters; the file is {dataset.sizeBytes:,} bytes",
            )
        )
        worst_out = report.rows * max_tokens / 1000
        answers = report.answerChars / CHARS_PER_TOKEN / 1000 if report.answerChars else worst_out
        items.append(
            _charge(
                plan,
                stage,
                "1K output tokens",
                output_price,
                worst_out,
                answers,
                f"{report.rows:,} answers of at most {max_tokens} tokens"
                + (f"; the reference answers hold {report.answerChars:,} characters" if report.answerChars else ""),
            )
        )
    if "eval" not in reports:
        notes.append("evaluation inference is estimated once preflight has read the evaluation dataset")
    expected_usd = [item.expectedUsd for item in items]
    return CostEstimate(
        estimatedUsd=round(sum(item.usd for item in items), 2),
        maxUsd=plan.budget.maxUsd,
        items=items,
        expectedUsd=None
        if None in expected_usd or "eval" not in reports
        else round(math.fsum(e or 0 for e in expected_usd), 2),
        priceNotes=notes,
    )


def estimate_cost(plan: Plan, rows: Mapping[str, int] | None = None) -> CostEstimate:
    """Worst-case GPU cost of the plan (every job that runs, for its full maximum runtime), and the expected one.

    ``rows`` (dataset name -> valid rows) lets the estimate cover the jobs whose work depends on the
    data (evaluations, Nova 1 SFT); without it only step-counted jobs are estimated. On the Bedrock road:
    :func:`bedrock_cost` without the datasets' reports.
    """
    if plan.platform == "bedrock":
        return bedrock_cost(plan)
    rows = rows or {}
    items: list[CostItem] = []
    warnings: list[str] = []
    for stage in STAGES:
        if not plan.enabled.runs(stage):
            continue
        method = STAGE_METHODS[stage]
        job = plan.jobs.of(method)
        hours = job.maxRuntimeSeconds / 3600
        instance_type, count = job.instances()
        price = hourly_price(instance_type) * count
        template = recipes.load_template(plan.model.key, method)
        guess = durations.job_hours(template, job.overrides, count, rows.get(STAGE_DATASETS[stage]))
        if guess is not None and guess.hours > hours:
            warnings.append(
                f"{STAGE_LABELS[stage]}: estimated {guess.hours:.1f} h ({guess.basis}) exceeds its maximum runtime "
                f"{hours:g} h, so the job would be stopped unfinished; set {RUNTIME_FIELDS[method]}.maxRuntimeHours "
                f"to at least {guess.suggested_runtime_hours():g} (or train fewer steps)"
            )
        items.append(
            CostItem.model_validate(
                {
                    "stage": stage,
                    "instanceType": job.instanceType,
                    "instanceCount": job.instanceCount,
                    "maxHours": round(hours, 2),
                    "usd": round(price * hours, 2),
                    "estimatedHours": None if guess is None else round(guess.hours, 2),
                    "expectedUsd": None if guess is None else round(price * min(guess.hours, hours), 2),
                }
            )
        )
    total = round(sum(item.usd for item in items), 2)
    expected = [item.expectedUsd for item in items]
    return CostEstimate(
        estimatedUsd=total,
        maxUsd=plan.budget.maxUsd,
        items=items,
        expectedUsd=None if None in expected else round(sum(e for e in expected if e is not None), 2),
        runtimeWarnings=warnings,
    )


def cost_item_text(item: CostItem) -> str:
    """One charge of a stage as a sum: instances x hours, or (Bedrock) quantity x unit price."""
    label, usd = STAGE_LABELS[item.stage], f"${item.usd:,.2f}"
    if item.unit is not None:
        return f"{label} {item.quantity or 0:,.6g} {item.unit} x ${item.unitUsd or 0:g} = {usd}"
    return f"{label} {item.instanceCount} x {item.instanceType} x {item.maxHours:g} h = {usd}"


def _budget_problem(cost: CostEstimate, platform: str = "sagemaker") -> str | None:
    if cost.estimatedUsd <= cost.maxUsd:
        return None
    parts = ", ".join(cost_item_text(i) for i in cost.items)
    if platform == "bedrock":
        return (
            f"budget.maxUsd: the worst-case Bedrock cost ${cost.estimatedUsd:,.2f} exceeds the budget "
            f"${cost.maxUsd:,.2f} ({parts}); raise budget.maxUsd, or train fewer epochs / tokens, lower "
            "rft.maxRuntimeHours or evaluation max_new_tokens"
        )
    return (
        f"budget.maxUsd: the worst-case GPU cost ${cost.estimatedUsd:,.2f} exceeds the budget "
        f"${cost.maxUsd:,.2f} ({parts}); raise budget.maxUsd or lower maxRuntimeHours / instanceCount"
    )


def dataset_kinds(plan: Plan) -> dict[str, str]:
    """Which datasets the plan reads, and the format each must have."""
    kinds: dict[str, str] = {"eval": plan.evaluation.task}
    if plan.enabled.sft:
        kinds["sft"] = "sft"
    if plan.enabled.rft:
        kinds["rft"] = "rft"
    return kinds


def dataset_rules(plan: Plan, name: str, max_rows: tuple[int, str] | None = None) -> dataset_checks.Rules:
    """The rules of ``name``'s dataset: the plan's model, and the batch size of the job that reads it.

    On Bedrock: Bedrock's record limits (``max_rows``: the account's record quota and its name, when read) and
    media only in the bucket of the staged copy Bedrock trains on.
    """
    if plan.platform == "bedrock":
        staged = plan.datasets.require(name).stagedUri
        rules = dataset_checks.Rules(
            model=plan.model.key,
            platform="bedrock",
            media_bucket=parse_s3_uri(staged)[0] if staged and name in ("sft", "rft") else None,
        )
        if max_rows is not None:
            rules = dataclasses.replace(
                rules, max_rows=max_rows[0], limit_source=f"the account's quota {max_rows[1]!r}"
            )
        return rules
    batch: int | None = None
    if name in ("sft", "rft"):
        value = plan.jobs.of(name).overrides.get("global_batch_size")
        if value is None:
            batch = recipe_batch_size(plan.model.key, name)
        elif type(value) is int:
            batch = value
    return dataset_checks.Rules(model=plan.model.key, batch_size=batch)


def recipe_batch_size(model: str, method: str) -> int | None:
    """The ``global_batch_size`` of ``model``'s base recipe for ``method``; None without one."""
    try:
        value = recipes.load_template(model, method).default("global_batch_size")
    except (recipes.RecipeError, KeyError):
        return None
    return value if type(value) is int else None


class _Lines:
    """A readable file over an iterator of byte strings (for ``upload_fileobj``), one piece at a time."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        parts, held = [self._rest], len(self._rest)
        while size < 0 or held < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            parts.append(piece)
            held += len(piece)
        data = b"".join(parts)
        if size < 0:
            self._rest = b""
            return data
        self._rest = data[size:]
        return data[:size]


GradeBatch = Callable[[list[Any]], list[Any]]


def lambda_grade_batch(lambda_client: Any, function_arn: str) -> GradeBatch:
    """``grade_batch`` that invokes the deployed grader synchronously, as the training job does."""

    def grade_batch(items: list[Any]) -> list[Any]:
        response = lambda_client.invoke(
            FunctionName=function_arn, InvocationType="RequestResponse", Payload=json.dumps(items).encode()
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise GraderInvocationError(f"{function_arn} failed: {body[:500].decode(errors='replace')}")
        results: list[Any] = json.loads(body)
        return results

    return grade_batch


def run_preflight(
    plan: Plan,
    *,
    s3: Any,
    grade_batch_for: Callable[[str], GradeBatch],
    verify_grader: Callable[..., Any],
    grader_spec: Callable[[str], dict[str, Any]],
    quota_lookup: quota_checks.QuotaLookup,
) -> PreflightSummary:
    """Run every pre-flight check; the summary goes into the run state, problems raise."""
    problems: list[str] = []
    bedrock = plan.platform == "bedrock"
    # Bedrock's cost depends on the datasets' text: its budget check follows their validation.
    if not bedrock and (problem := _budget_problem(estimate_cost(plan))):
        problems.append(problem)
    quota_problems, quota_summary = quota_checks.check_quotas(plan, quota_lookup)
    problems.extend(quota_problems)
    record_quotas = quota_checks.record_limits(quota_summary) if bedrock else {}

    grader = plan.grader
    sample_source = "rft" if plan.enabled.rft else ("eval" if plan.evaluation.task == "rft_eval" else None)
    samples: list[dict[str, Any]] = []
    reports: dict[str, DatasetReport] = {}
    eval_prompts: list[str] = []
    leaks: leakage_checks.LeakCounter | None = None
    for name, kind in dataset_kinds(plan).items():  # eval first: its prompts are what may leak
        dataset = plan.datasets.require(name)
        if name == "eval":
            prompts: Callable[[str], None] | None = eval_prompts.append
        else:
            leaks = leaks or leakage_checks.LeakCounter(eval_prompts)
            leaks.split(name)
            prompts = functools.partial(leaks.see, name)
        body = _open(s3, dataset.uri, dataset.versionId)
        try:
            report = dataset_checks.validate_stream(
                body,
                kind,
                rules=dataset_rules(plan, name, record_quotas.get(name)),
                sample=samples if name == sample_source else None,
                sample_size=GRADER_SAMPLE_ROWS,
                prompts=prompts,
            )
        finally:
            body.close()
        reports[name] = DatasetReport.model_validate(report.as_dict())
        problems.extend(f"datasets.{name} ({kind}): {p}" for p in report.problems())
    leakage: LeakageSummary | None = None
    if leaks is not None:
        found = leaks.result()
        leakage = LeakageSummary(
            evalPrompts=found.eval_prompts, found=found.found, examples=found.examples, warnings=found.warnings()
        )

    if bedrock and (problem := _budget_problem(bedrock_cost(plan, reports), "bedrock")):
        problems.append(problem)

    grader_summary: GraderSmokeTest | None = None
    if grader is not None:
        grader_summary = GraderSmokeTest(name=grader.name, version=grader.version, arn=grader.arn)
        if not samples:
            problems.append(f"grader {grader.name!r}: no valid rows to run the smoke test with")
        else:
            verdict = verify_grader(
                grade_batch_for(grader.arn),
                samples,
                spec=grader_spec(grader.name),
                name=grader.name,
                sample=GRADER_SAMPLE_ROWS,
                batch_size=GRADER_BATCH_SIZE,
            )
            grader_summary = grader_summary.model_copy(
                update={
                    "passed": verdict.passed,
                    "rowsSampled": verdict.rows_sampled,
                    "cases": [
                        GraderCase(case=c.case, mean=round(c.mean, 4), failing=c.failing, passed=c.passed)
                        for c in verdict.cases
                    ],
                    "problems": list(verdict.problems),
                }
            )
            if not verdict.passed:
                failing = [
                    f"{c.case} ({c.failing} failing rows: {c.example or c.rule})" for c in verdict.cases if not c.passed
                ]
                detail = "; ".join(failing + list(verdict.problems)) or "no case could be scored"
                problems.append(f"grader {grader.name!r} failed the smoke test against the deployed function: {detail}")

    if problems:
        raise PreflightError(problems, _cost(plan, reports))

    for name in dataset_kinds(plan):
        dataset = plan.datasets.require(name)
        if dataset.stagedUri is None:
            raise ValueError(f"the plan has no staged copy of the {name} dataset")
        source_bucket, source_key = parse_s3_uri(dataset.uri)
        target_bucket, target_key = parse_s3_uri(dataset.stagedUri)
        if reports[name].schemaVersionAdded:
            body = _open(s3, dataset.uri, dataset.versionId)
            try:
                s3.upload_fileobj(_Lines(dataset_checks.with_schema_version(body)), target_bucket, target_key)
            finally:
                body.close()
        else:
            source = {"Bucket": source_bucket, "Key": source_key}
            if dataset.versionId:
                source["VersionId"] = dataset.versionId
            s3.copy(CopySource=source, Bucket=target_bucket, Key=target_key)
        reports[name] = reports[name].model_copy(update={"stagedUri": dataset.stagedUri})
    return PreflightSummary(
        datasets=reports, grader=grader_summary, cost=_cost(plan, reports), quotas=quota_summary, leakage=leakage
    )


def _cost(plan: Plan, reports: Mapping[str, DatasetReport]) -> CostEstimate:
    """The cost estimate with what preflight read of the datasets."""
    if plan.platform == "bedrock":
        return bedrock_cost(plan, reports)
    return estimate_cost(plan, {name: report.rows for name, report in reports.items()})


def _open(s3: Any, uri: str, version_id: str | None) -> Any:
    """The body of the object version preflight validates and stages."""
    bucket, key = parse_s3_uri(uri)
    request = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    return s3.get_object(**request)["Body"]
