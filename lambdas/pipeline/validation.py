"""Validation of a run input: every problem, listed at once.

Every problem is collected (pydantic's, the semantic checks) and returned, each with its
field path, by :func:`input_problems` (the trigger uses it before it starts an execution),
or raised as one :class:`RunInputError` that lists each on its own line. The input's shape
is :class:`lambdas.pipeline.schema.RunInput`; :mod:`lambdas.pipeline.plan` resolves a valid
input into a plan (and checks the datasets exist).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from lambdas.common import layout
from lambdas.pipeline import bedrock_hyperparameters, estimate, naming, recipes
from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR, MODELS
from lambdas.pipeline.metrics import GEN_QA_METRICS
from lambdas.pipeline.outputs import REWARD_METRIC, metric_name
from lambdas.pipeline.policy import RunPolicy, apply_gate_floor, capped_seconds, job_problems, non_finite_paths
from lambdas.pipeline.policy import request_problems as policy_problems
from lambdas.pipeline.s3uri import CheckpointUriError, S3UriError, check_checkpoint_uri, parse_s3_uri
from lambdas.pipeline.schema import (
    MAX_RUNTIME_HOURS,
    Enabled,
    EvaluationSettings,
    JobSettings,
    RunInput,
    TrainingSettings,
)

DATASETS_PREFIX = layout.DATASETS_PREFIX
# Platform bedrock: the fields that size SageMaker jobs (Bedrock chooses the hardware), and the longest a job
# may take when the run sets no maxRuntimeHours (it bounds how long a stage beside it waits for quota).
SAGEMAKER_ONLY_FIELDS = {
    "sft": ("instanceType", "instanceCount"),
    "rft": ("instanceType", "instanceCount"),
    "evaluation": ("instanceType",),
}
BEDROCK_DEFAULT_RUNTIME_HOURS = 24.0


class RunInputError(ValueError):
    """The run input has problems; the message lists every one of them, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"The run input has {count}:\n" + "\n".join(f"- {p}" for p in problems))


@dataclass
class Resolved:
    """The pieces of the plan the checks of a well-formed input resolve."""

    enabled: Enabled
    needs_grader: bool = False
    jobs: dict[str, JobSettings | None] = field(default_factory=dict)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(input)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc`` (the parent of an unknown key)."""
    model: Any = RunInput
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


MAX_SHOWN = 120


def _shown(value: object) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN` characters (an error quotes the input, never all of it)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            problems.append(f"{_location(loc)}: unknown key (allowed: {', '.join(allowed)})")
        elif item["type"] == "missing":
            problems.append(f"{_location(loc)}: required")
        else:
            problems.append(f"{_location(loc)}: {item['msg']} (got {_shown(item.get('input'))})")
    return problems


def _without(payload: dict[str, Any], locations: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A copy of ``payload`` without the values at ``locations`` (so defaults apply in their place)."""
    cleaned = copy.deepcopy(payload)
    for loc in locations:
        node: Any = cleaned
        for part in loc[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return cleaned


def parse_input(
    payload: dict[str, Any],
    *,
    data_bucket: str | None,
    graders: Collection[str] | None,
    account: str | None = None,
    policy: RunPolicy | None = None,
) -> tuple[RunInput | None, list[str], Resolved | None]:
    """The parsed input (or None), every problem, and the resolved pieces of the plan.

    ``account`` is this account: a ``resumeFrom.checkpoint`` must be in one of its escrow buckets (None
    checks the URI's form alone). ``policy`` is the deployment's run policy (None: no policy, as the
    trigger's early checks): what the input asks beyond it is a problem, and the gate values a deploying
    run leaves unset take the policy's floor. When pydantic rejects some fields, the semantic checks still
    run on the rest (the rejected values replaced by their defaults), so one error lists everything.
    """
    try:
        run = RunInput.model_validate(payload)
    except ValidationError as error:
        problems = _pydantic_problems(error)
        rejected = [tuple(e["loc"]) for e in error.errors() if e["type"] != "missing" and e["loc"]]
        try:
            partial = RunInput.model_validate(_without(payload, rejected))
        except ValidationError:
            return None, problems, None
        reported = {_location(loc) for loc in rejected}
        more = _policy_problems(partial, policy)
        partial = partial if policy is None else apply_gate_floor(partial, policy)
        more += _checks(partial, data_bucket=data_bucket, graders=graders, account=account, policy=policy)[0]
        problems.extend(p for p in more if p.split(":", 1)[0] not in reported)
        return None, problems, None
    problems = _policy_problems(run, policy)
    run = run if policy is None else apply_gate_floor(run, policy)
    more, resolved = _checks(run, data_bucket=data_bucket, graders=graders, account=account, policy=policy)
    return run, problems + more, resolved


def _policy_problems(run: RunInput, policy: RunPolicy | None) -> list[str]:
    return [] if policy is None else policy_problems(run, policy)


def _dataset_uri_problem(field: str, uri: str, data_bucket: str | None) -> str | None:
    try:
        bucket, key = parse_s3_uri(uri)
    except S3UriError as error:
        return f"{field}: {error}"
    if data_bucket is not None and bucket != data_bucket:
        return f"{field}: {uri} is outside the project's data bucket; upload it to s3://{data_bucket}/{DATASETS_PREFIX}"
    if not key.startswith(DATASETS_PREFIX):
        return f"{field}: {uri} must be under s3://{bucket}/{DATASETS_PREFIX} (the pipeline reads datasets only there)"
    if key.endswith("/"):
        return f"{field}: {uri} is a folder; give the URI of one .jsonl file"
    return None


def effective_stages(run: RunInput) -> Enabled:
    """Which stages run, with ``resumeFrom`` applied and the SFT evaluation derived.

    The SFT checkpoint is evaluated beside RFT only when RFT runs; without RFT the final
    evaluation is the SFT model's evaluation.
    """
    sft, rft = run.stages.sft, run.stages.rft
    if run.resumeFrom is not None:
        sft = False
        if run.resumeFrom.stage == "finalEval":
            rft = False
    return Enabled(
        baselineEval=run.stages.baselineEval,
        sft=sft,
        sftEval=rft and (sft or run.resumeFrom is not None),
        rft=rft,
        finalEval=True,
        deploy=run.stages.deploy,
    )


def _job_settings(
    run: RunInput, model: str, method: str, problems: list[str], policy: RunPolicy | None = None
) -> JobSettings | None:
    """Instance type/count, runtime and checked overrides of one method, or None (problems appended)."""
    settings: TrainingSettings | EvaluationSettings = run.evaluation
    if method in ("sft", "rft"):
        settings = run.sft if method == "sft" else run.rft
    field = {"sft": "sft", "rft": "rft", "eval": "evaluation"}[method]
    if not recipes.available(model, method):
        return None
    template = recipes.load_template(model, method)
    overrides = dict(settings.overrides)
    count: Any = settings.instanceCount if isinstance(settings, TrainingSettings) else None
    if "replicas" in overrides and method != "eval":
        replicas = overrides.pop("replicas")
        if count is not None and replicas != count:
            problems.append(f"{field}.overrides.replicas: {replicas!r} contradicts {field}.instanceCount {count}")
        count = replicas if count is None else count
    count = template.instance_count if count is None else count
    ok = True
    for key, message in recipes.override_problems(template, overrides):
        problems.append(f"{field}.overrides.{key}: {message}")
        ok = False
    if not (isinstance(count, int) and not isinstance(count, bool)) or count not in template.instance_counts:
        problems.append(
            f"{field}.instanceCount: {count!r} instances; {model} {method} accepts {list(template.instance_counts)}"
        )
        ok = False
    instance_type = settings.instanceType or template.instance_type
    if instance_type not in template.instance_types:
        problems.append(
            f"{field}.instanceType: {instance_type!r} is not supported by the {model} {method} recipe "
            f"(allowed: {', '.join(template.instance_types)})"
        )
        ok = False
    elif instance_type not in INSTANCE_PRICE_USD_PER_HOUR:
        problems.append(
            f"{field}.instanceType: {instance_type!r} has no price in the catalog "
            f"(priced: {', '.join(sorted(INSTANCE_PRICE_USD_PER_HOUR))})"
        )
        ok = False
    if not ok:
        return None
    hours = settings.maxRuntimeHours or min(
        estimate.default_runtime_hours(template, overrides, count), MAX_RUNTIME_HOURS
    )
    job = JobSettings(
        instanceType=instance_type,
        instanceCount=count,
        maxRuntimeSeconds=capped_seconds(hours, policy),
        overrides=overrides,
    )
    if policy is not None and (beyond := job_problems(field, job, policy)):
        problems.extend(beyond)
        return None
    return job


def _bedrock_job_settings(
    run: RunInput, model: str, method: str, problems: list[str], policy: RunPolicy | None = None
) -> JobSettings | None:
    """Platform bedrock: the runtime and the overrides (short keys, checked against Bedrock's names and ranges)
    of one method, or None (problems appended). Instances are SageMaker's, so asking for them is a problem."""
    field = {"sft": "sft", "rft": "rft", "eval": "evaluation"}[method]
    settings: TrainingSettings | EvaluationSettings = getattr(run, field)
    ok = True
    for name in SAGEMAKER_ONLY_FIELDS[field]:
        if getattr(settings, name) is not None:
            problems.append(f"{field}.{name}: not used on platform bedrock (Bedrock chooses the hardware)")
            ok = False
    for key, message in bedrock_hyperparameters.problems(method, model, dict(settings.overrides)):
        if key != "(method)":  # the method's availability is reported once, by the stage's check
            problems.append(f"{field}.overrides.{key}: {message}")
            ok = False
    if not ok or not bedrock_hyperparameters.available(model, method):
        return None
    hours = settings.maxRuntimeHours or BEDROCK_DEFAULT_RUNTIME_HOURS
    return JobSettings(maxRuntimeSeconds=capped_seconds(hours, policy), overrides=dict(settings.overrides))


def _bedrock_problems(run: RunInput, stages: Enabled) -> list[str]:
    """What platform bedrock cannot do: a method Bedrock does not offer for the model, ``resumeFrom``."""
    found = []
    for method in ("sft", "rft"):
        if stages.runs(method) and not bedrock_hyperparameters.available(run.model, method):
            offered = ", ".join(bedrock_hyperparameters.SUPPORTED[method])
            found.append(
                f"stages.{method}: Bedrock does not offer {method.upper()} for {run.model} on platform bedrock "
                f"(models: {offered}); use platform sagemaker or another model"
            )
    if run.resumeFrom is not None:
        found.append(
            "resumeFrom: not available on platform bedrock: a Bedrock customization job starts from a model, not "
            "from a training-job checkpoint; resume on platform sagemaker"
        )
    return found


def _checks(
    run: RunInput,
    *,
    data_bucket: str | None,
    graders: Collection[str] | None,
    account: str | None,
    policy: RunPolicy | None = None,
) -> tuple[list[str], Resolved]:
    """Semantic problems of a well-formed input, and the pieces of the plan they produce."""
    problems: list[str] = []
    model = MODELS.get(run.model)
    if model is None:
        problems.append(f"model: unknown model {run.model!r} (supported: {', '.join(sorted(MODELS))})")
    stages = effective_stages(run)
    resolved = Resolved(enabled=stages)
    explicit = run.stages.model_fields_set

    if run.resumeFrom is not None:
        resume = run.resumeFrom
        try:
            check_checkpoint_uri(resume.checkpoint, account)
        except CheckpointUriError as error:
            problems.append(f"resumeFrom.checkpoint: {error}")
        if resume.run is None:
            problems.append(
                "resumeFrom.run: required: name the earlier run whose run.json recorded the checkpoint "
                f"(runs/<run-id>/{layout.RUN_RECORD_NAME} in the artifacts bucket, stages.sft.checkpoint or "
                'stages.rft.checkpoint), e.g. {"stage": "rft", "run": "<run-id>", "checkpoint": "s3://..."}'
            )
        elif not naming.is_run_id(resume.run):
            problems.append(
                f"resumeFrom.run: {resume.run!r} is not a run id (the folder name under runs/: letters, digits "
                f"and '-', ending in '-' and {naming.RUN_ID_HASH} hex digits, at most {naming.MAX_RUN_ID} characters)"
            )
        if "sft" in explicit and run.stages.sft:
            problems.append(f"stages.sft: true contradicts resumeFrom.stage={resume.stage!r}, which skips SFT")
        if resume.stage == "finalEval" and "rft" in explicit and run.stages.rft:
            problems.append("stages.rft: true contradicts resumeFrom.stage='finalEval', which skips RFT")
        if resume.stage == "rft" and not run.stages.rft:
            problems.append("resumeFrom.stage: 'rft' but stages.rft is false")
    elif stages.rft and not stages.sft and run.platform == "sagemaker":
        problems.append(
            "stages.rft: RFT starts from an SFT checkpoint; enable stages.sft or give "
            'resumeFrom {"stage": "rft", "checkpoint": "s3://..."}'
        )
    elif not stages.sft and not stages.rft and run.platform == "bedrock":
        problems.append("stages: nothing to train; enable stages.sft or stages.rft")
    elif not stages.sft and not stages.rft:
        problems.append(
            "stages: nothing to train; enable stages.sft, or give "
            'resumeFrom {"stage": "finalEval", "checkpoint": "s3://..."} to evaluate and deploy a checkpoint'
        )

    needed = {"sft": stages.sft, "rft": stages.rft, "eval": True}
    for name, used in needed.items():
        uri = getattr(run.datasets, name)
        if used and uri is None:
            why = {"sft": "SFT runs", "rft": "RFT runs", "eval": "the final evaluation feeds the quality gate"}[name]
            problems.append(f"datasets.{name}: required because {why}")
    for name in ("sft", "rft", "eval"):
        uri = getattr(run.datasets, name)
        if uri is not None:
            problem = _dataset_uri_problem(f"datasets.{name}", uri, data_bucket)
            if problem:
                problems.append(problem)

    if model is not None and run.platform == "bedrock":
        problems.extend(_bedrock_problems(run, stages))
    elif model is not None and stages.rft and model.rft_tag is None:
        supported = sorted(k for k, m in MODELS.items() if m.rft_tag)
        problems.append(f"stages.rft: {model.key} has no RFT training image (RFT models: {', '.join(supported)})")

    needs_grader = stages.rft or run.evaluation.task == "rft_eval"
    resolved.needs_grader = needs_grader
    if needs_grader and graders is not None and run.grader not in graders:
        deployed = ", ".join(sorted(graders)) or "none"
        problems.append(f"grader: {run.grader!r} is not a deployed grader (deployed: {deployed})")

    if model is not None:
        jobs: dict[str, JobSettings | None] = {}
        settle = _bedrock_job_settings if run.platform == "bedrock" else _job_settings
        for method in ("sft", "rft"):
            settings = getattr(run, method)
            if stages.runs(method) and (method != "rft" or model.rft_tag is not None or run.platform == "bedrock"):
                jobs[method] = settle(run, model.key, method, problems, policy)
            elif settings.model_fields_set:
                settle(run, model.key, method, problems, policy)  # a skipped stage's settings are checked
        jobs["eval"] = settle(run, model.key, "eval", problems, policy)
        resolved.jobs = jobs

    gate = run.gate
    for name in ("minScore", "minGainOverBaseline"):
        if not math.isfinite(getattr(gate, name)):
            problems.append(f"gate.{name}: must be a finite number")
    for section in ("sft", "rft", "evaluation"):
        for path in non_finite_paths(getattr(run, section).overrides, f"{section}.overrides"):
            problems.append(f"{path}: must be a finite number")
    problems.extend(_gate_metric_problems(run))
    if gate.minGainOverBaseline > 0 and not stages.baselineEval:
        problems.append(
            f"gate.minGainOverBaseline: {gate.minGainOverBaseline:g} (given, or the run policy's floor for a "
            "deploying run): the gain over the baseline needs stages.baselineEval=true"
        )
    return problems, resolved


def _gate_metric_problems(run: RunInput) -> list[str]:
    """``gate.metric`` must be a metric the evaluation task reports."""
    task = run.evaluation.task
    if task == "rft_eval":
        if "metric" not in run.gate.model_fields_set:
            return [
                "gate.metric: required with evaluation.task 'rft_eval': name the metric the gate judges, "
                f"{REWARD_METRIC!r} (the mean reward) or one of the grader's metrics_list names, spelled as the "
                "grader spells it (no default applies)"
            ]
        return []
    if metric_name(run.gate.metric) not in GEN_QA_METRICS:
        return [f"gate.metric: {run.gate.metric!r} is not a {task} metric (one of: {', '.join(GEN_QA_METRICS)})"]
    return []


def input_problems(
    payload: object, *, data_bucket: str | None = None, graders: Collection[str] | None = None
) -> list[str]:
    """Every problem of ``payload`` found without AWS calls (shape, types, keys, stage combinations)."""
    if not isinstance(payload, dict):
        return [f"(input): a run input is a JSON object, got {type(payload).__name__}"]
    return parse_input(payload, data_bucket=data_bucket, graders=graders)[1]
