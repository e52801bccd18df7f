"""The run input (what a user pastes in the console) and its resolution into a run plan.

Only ``datasets`` is required; everything else has a default::

    {
      "datasets": {"sft": "s3://<data bucket>/datasets/sft.jsonl",
                   "rft": "s3://<data bucket>/datasets/rft.jsonl",
                   "eval": "s3://<data bucket>/datasets/eval.jsonl"},
      "model": "nova-2-lite",
      "grader": "classification",
      "stages": {"baselineEval": true, "sft": true, "rft": true, "deploy": true},
      "sft": {"overrides": {"max_steps": 100, "lr": 5e-6}, "instanceCount": 4, "maxRuntimeHours": 3},
      "rft": {"overrides": {"max_steps": 40, "number_generation": 4}},
      "evaluation": {"task": "gen_qa", "overrides": {"max_new_tokens": 1024}},
      "gate": {"metric": "exact_match", "minScore": 0.7, "minGainOverBaseline": 0.05, "mustBeatDeployed": true},
      "budget": {"maxUsd": 2000},
      "resumeFrom": {"stage": "rft", "checkpoint": "s3://customer-escrow-.../checkpoint"},
      "description": "free text kept in the run record"
    }

Every problem is collected (pydantic's, the semantic checks, S3 existence) and
raised as one :class:`RunInputError` that lists each on its own line with its
field path. :func:`input_problems` runs every check that needs no AWS call (the
trigger uses it before it starts an execution).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.common import layout
from lambdas.pipeline import naming, recipes
from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR, MODELS
from lambdas.pipeline.metrics import GEN_QA_METRICS
from lambdas.pipeline.outputs import metric_name
from lambdas.pipeline.s3uri import S3UriError, parse_s3_uri

DATASETS_PREFIX = layout.DATASETS_PREFIX
MAX_JOB_ATTEMPTS = 4
MAX_RUNTIME_HOURS = 28 * 24  # SageMaker's MaxRuntimeInSeconds ceiling (28 days)
# Nova jobs write checkpoints to AWS-owned escrow buckets; the SageMaker and Bedrock roles can read only those.
ESCROW_CHECKPOINT_PREFIX = "s3://customer-escrow-"


class RunInputError(ValueError):
    """The run input has problems; the message lists every one of them, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"The run input has {count}:\n" + "\n".join(f"- {p}" for p in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Datasets(_Model):
    """S3 URIs (``s3://<data bucket>/datasets/...``) of JSONL files.

    ``sft`` (Converse format) is needed when SFT runs, ``rft`` when RFT runs, ``eval``
    always (the final evaluation feeds the quality gate).
    """

    sft: str | None = None
    rft: str | None = None
    eval: str | None = None


class Stages(_Model):
    """Which stages run. Evaluations of SFT and the final evaluation follow from these."""

    baselineEval: bool = True
    sft: bool = True
    rft: bool = True
    deploy: bool = True


class TrainingSettings(_Model):
    """Overrides of the base recipe (short keys, listed in the error when unknown) and the job's size.

    ``instanceCount`` is the recipe's ``run.replicas``; ``overrides.replicas`` is accepted as a synonym.
    ``maxRuntimeHours`` becomes ``MaxRuntimeInSeconds`` and is what the budget check charges.
    """

    overrides: dict[str, Any] = Field(default_factory=dict)
    instanceType: str | None = None
    instanceCount: int | None = Field(default=None, ge=1)
    maxRuntimeHours: float | None = Field(default=None, gt=0, le=MAX_RUNTIME_HOURS)


class EvaluationSettings(_Model):
    """Evaluation jobs: ``gen_qa`` (dataset rows ``{"query", "response"}``) or ``rft_eval`` (RFT rows, scored
    by the grader), inference overrides, instance type and maximum runtime of each evaluation job."""

    task: Literal["gen_qa", "rft_eval"] = "gen_qa"
    overrides: dict[str, Any] = Field(default_factory=dict)
    instanceType: str | None = None
    maxRuntimeHours: float | None = Field(default=None, gt=0, le=MAX_RUNTIME_HOURS)


class Gate(_Model):
    """The candidate's ``metric`` must reach ``minScore``, beat the baseline by ``minGainOverBaseline`` and,
    with ``mustBeatDeployed``, beat the model this pipeline deployed last.

    With ``gen_qa`` the metric is one of :data:`lambdas.pipeline.metrics.GEN_QA_METRICS` (spelled as
    reported, e.g. ``rougeL``, or normalized); with ``rft_eval`` it must be given explicitly."""

    metric: str = Field(default="exact_match", min_length=1)
    minScore: float = 0.0
    minGainOverBaseline: float = 0.0
    mustBeatDeployed: bool = True


class Budget(_Model):
    """Upper bound of the GPU cost estimate (instances x count x max runtime x on-demand price)."""

    maxUsd: float = Field(default=2000.0, gt=0)


class ResumeFrom(_Model):
    """Start a later stage from a checkpoint of an earlier run (an escrow ``s3://customer-escrow-...`` URI).

    ``rft``: train RFT from this SFT checkpoint (SFT is skipped). ``finalEval``: evaluate this checkpoint
    and import it (SFT and RFT are skipped).
    """

    stage: Literal["rft", "finalEval"]
    checkpoint: str


class RunInput(_Model):
    """The console input of one run."""

    datasets: Datasets
    model: str = "nova-2-lite"
    grader: str = "classification"
    stages: Stages = Field(default_factory=Stages)
    sft: TrainingSettings = Field(default_factory=TrainingSettings)
    rft: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    gate: Gate = Field(default_factory=Gate)
    budget: Budget = Field(default_factory=Budget)
    resumeFrom: ResumeFrom | None = None
    description: str | None = Field(default=None, max_length=1000)


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(input)"


def _allowed_keys(loc: tuple) -> list[str]:
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


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            problems.append(f"{_location(loc)}: unknown key (allowed: {', '.join(allowed)})")
        elif item["type"] == "missing":
            problems.append(f"{_location(loc)}: required")
        else:
            problems.append(f"{_location(loc)}: {item['msg']} (got {item.get('input')!r})")
    return problems


def _without(payload: dict, locations: list[tuple]) -> dict:
    """A copy of ``payload`` without the values at ``locations`` (so defaults apply in their place)."""
    cleaned = copy.deepcopy(payload)
    for loc in locations:
        node: Any = cleaned
        for part in loc[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return cleaned


def _parse(
    payload: dict, *, data_bucket: str | None, graders: Collection[str] | None
) -> tuple[RunInput | None, list[str], dict]:
    """The parsed input (or None), every problem, and the resolved pieces of the plan.

    When pydantic rejects some fields, the semantic checks still run on the rest (the
    rejected values replaced by their defaults), so one error lists everything.
    """
    try:
        run = RunInput.model_validate(payload)
    except ValidationError as error:
        problems = _pydantic_problems(error)
        rejected = [tuple(e["loc"]) for e in error.errors() if e["type"] != "missing" and e["loc"]]
        try:
            partial = RunInput.model_validate(_without(payload, rejected))
        except ValidationError:
            return None, problems, {}
        reported = {_location(loc) for loc in rejected}
        more, _ = _checks(partial, data_bucket=data_bucket, graders=graders)
        problems.extend(p for p in more if p.split(":", 1)[0] not in reported)
        return None, problems, {}
    problems, resolved = _checks(run, data_bucket=data_bucket, graders=graders)
    return run, problems, resolved


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


def effective_stages(run: RunInput) -> dict[str, bool]:
    """Which stages run, with ``resumeFrom`` applied and the SFT evaluation derived.

    The SFT checkpoint is evaluated beside RFT only when RFT runs; without RFT the final
    evaluation is the SFT model's evaluation.
    """
    sft, rft = run.stages.sft, run.stages.rft
    if run.resumeFrom is not None:
        sft = False
        if run.resumeFrom.stage == "finalEval":
            rft = False
    return {
        "baselineEval": run.stages.baselineEval,
        "sft": sft,
        "sftEval": rft and (sft or run.resumeFrom is not None),
        "rft": rft,
        "finalEval": True,
        "deploy": run.stages.deploy,
    }


def _job_settings(run: RunInput, model: str, method: str, problems: list[str]) -> dict[str, Any] | None:
    """Instance type/count, runtime and checked overrides of one method, or None (problems appended)."""
    settings: Any = {"sft": run.sft, "rft": run.rft, "eval": run.evaluation}[method]
    field = {"sft": "sft", "rft": "rft", "eval": "evaluation"}[method]
    if not recipes.available(model, method):
        return None
    template = recipes.load_template(model, method)
    overrides = dict(settings.overrides)
    count = getattr(settings, "instanceCount", None)
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
    hours = settings.maxRuntimeHours or template.max_runtime_hours
    if not ok:
        return None
    return {
        "instanceType": instance_type,
        "instanceCount": count,
        "maxRuntimeSeconds": int(math.ceil(hours * 3600)),
        "overrides": overrides,
    }


def _checks(run: RunInput, *, data_bucket: str | None, graders: Collection[str] | None) -> tuple[list[str], dict]:
    """Semantic problems of a well-formed input, and the pieces of the plan they produce."""
    problems: list[str] = []
    resolved: dict[str, Any] = {}
    model = MODELS.get(run.model)
    if model is None:
        problems.append(f"model: unknown model {run.model!r} (supported: {', '.join(sorted(MODELS))})")
    stages = effective_stages(run)
    resolved["stages"] = stages
    explicit = run.stages.model_fields_set

    if run.resumeFrom is not None:
        resume = run.resumeFrom
        try:
            parse_s3_uri(resume.checkpoint)
        except S3UriError as error:
            problems.append(f"resumeFrom.checkpoint: {error}")
        else:
            if not resume.checkpoint.startswith(ESCROW_CHECKPOINT_PREFIX):
                problems.append(
                    f"resumeFrom.checkpoint: {resume.checkpoint} is not an escrow checkpoint; give the "
                    f"{ESCROW_CHECKPOINT_PREFIX}<account>-... URI of an earlier run's checkpoint (its run.json "
                    "stages.<stage>.checkpoint): the training and Bedrock import roles can read only escrow buckets"
                )
        if "sft" in explicit and run.stages.sft:
            problems.append(f"stages.sft: true contradicts resumeFrom.stage={resume.stage!r}, which skips SFT")
        if resume.stage == "finalEval" and "rft" in explicit and run.stages.rft:
            problems.append("stages.rft: true contradicts resumeFrom.stage='finalEval', which skips RFT")
        if resume.stage == "rft" and not run.stages.rft:
            problems.append("resumeFrom.stage: 'rft' but stages.rft is false")
    elif stages["rft"] and not stages["sft"]:
        problems.append(
            "stages.rft: RFT starts from an SFT checkpoint; enable stages.sft or give "
            'resumeFrom {"stage": "rft", "checkpoint": "s3://..."}'
        )
    elif not stages["sft"] and not stages["rft"]:
        problems.append(
            "stages: nothing to train; enable stages.sft, or give "
            'resumeFrom {"stage": "finalEval", "checkpoint": "s3://..."} to evaluate and deploy a checkpoint'
        )

    needed = {"sft": stages["sft"], "rft": stages["rft"], "eval": True}
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

    if model is not None and stages["rft"] and model.rft_tag is None:
        supported = sorted(k for k, m in MODELS.items() if m.rft_tag)
        problems.append(f"stages.rft: {model.key} has no RFT training image (RFT models: {', '.join(supported)})")

    needs_grader = stages["rft"] or run.evaluation.task == "rft_eval"
    resolved["needsGrader"] = needs_grader
    if needs_grader and graders is not None and run.grader not in graders:
        deployed = ", ".join(sorted(graders)) or "none"
        problems.append(f"grader: {run.grader!r} is not a deployed grader (deployed: {deployed})")

    if model is not None:
        jobs: dict[str, Any] = {}
        for method in ("sft", "rft"):
            settings = getattr(run, method)
            if stages[method] and (method != "rft" or model.rft_tag is not None):
                jobs[method] = _job_settings(run, model.key, method, problems)
            elif settings.model_fields_set:
                _job_settings(run, model.key, method, problems)  # a skipped stage's settings are still checked
        jobs["eval"] = _job_settings(run, model.key, "eval", problems)
        resolved["jobs"] = jobs

    gate = run.gate
    for name in ("minScore", "minGainOverBaseline"):
        if not math.isfinite(getattr(gate, name)):
            problems.append(f"gate.{name}: must be a finite number")
    problems.extend(_gate_metric_problems(run))
    if gate.minGainOverBaseline > 0 and not stages["baselineEval"]:
        problems.append("gate.minGainOverBaseline: the gain over the baseline needs stages.baselineEval=true")
    return problems, resolved


def _gate_metric_problems(run: RunInput) -> list[str]:
    """``gate.metric`` must be a metric the evaluation task reports."""
    task = run.evaluation.task
    if task == "rft_eval":
        if "metric" not in run.gate.model_fields_set:
            return [
                "gate.metric: required with evaluation.task 'rft_eval': its metric names come from the grader "
                "and are not documented, so name the metric the gate judges (no default applies)"
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
    return _parse(payload, data_bucket=data_bucket, graders=graders)[1]


HeadObject = Callable[[str, str], Mapping[str, Any]]


def resolve_plan(
    payload: object,
    *,
    execution: Mapping[str, Any],
    pipeline_name: str,
    data_bucket: str,
    artifacts_bucket: str,
    graders: Mapping[str, str],
    grader_version: Callable[[str], str | None],
    head_object: HeadObject,
) -> tuple[dict, dict]:
    """Validate ``payload`` completely and resolve the run plan and the initial stage records.

    ``head_object(bucket, key)`` returns the object's metadata (``ETag``, ``ContentLength``,
    ``VersionId``) or raises ``LookupError`` (missing) / ``PermissionError`` (unreadable).
    """
    if not isinstance(payload, dict):
        raise RunInputError([f"(input): a run input is a JSON object, got {type(payload).__name__}"])
    run, problems, resolved = _parse(payload, data_bucket=data_bucket, graders=graders)
    if run is None:
        raise RunInputError(problems)

    datasets: dict[str, Any] = {}
    for name in ("sft", "rft", "eval"):
        uri = getattr(run.datasets, name)
        if uri is None or any(p.startswith(f"datasets.{name}:") for p in problems):
            continue
        bucket, key = parse_s3_uri(uri)
        try:
            head = head_object(bucket, key)
        except LookupError:
            problems.append(f"datasets.{name}: {uri} does not exist")
            continue
        except PermissionError:
            problems.append(f"datasets.{name}: {uri} is not readable by the pipeline")
            continue
        datasets[name] = {
            "uri": uri,
            "etag": str(head.get("ETag", "")).strip('"'),
            "sizeBytes": int(head.get("ContentLength", 0)),
            "versionId": head.get("VersionId"),
        }
        if int(head.get("ContentLength", 0)) == 0:
            problems.append(f"datasets.{name}: {uri} is empty")
    if problems:
        raise RunInputError(problems)

    run_id = naming.run_id_from_execution(str(execution.get("name", "")))
    stages = resolved["stages"]
    model = MODELS[run.model]
    eval_file = "gen_qa.jsonl" if run.evaluation.task == "gen_qa" else "rft_eval.jsonl"
    datasets["eval"]["stagedUri"] = f"s3://{artifacts_bucket}/{layout.staged_eval_key(run_id, eval_file)}"
    # Training reads the version pre-flight validated, copied under the run (a folder of its own: a channel
    # is a key prefix, so pointing it at datasets/rft.jsonl would also pull datasets/rft.jsonl.bak).
    for name in ("sft", "rft"):
        if stages[name] and name in datasets:
            key = layout.staged_dataset_key(run_id, name, f"{name}.jsonl")
            datasets[name]["stagedUri"] = f"s3://{artifacts_bucket}/{key}"
    grader = None
    if resolved["needsGrader"]:
        grader = {"name": run.grader, "arn": graders[run.grader], "version": grader_version(run.grader)}
    resume = run.resumeFrom.model_dump() if run.resumeFrom is not None else None
    plan = {
        "runId": run_id,
        "pipelineName": pipeline_name,
        "executionArn": execution.get("id"),
        "startedAt": execution.get("startTime"),
        "description": run.description,
        "model": {"key": model.key, "modelType": model.model_type, "modelNameOrPath": model.model_name_or_path},
        "stages": stages,
        "resumeFrom": resume,
        "datasets": datasets,
        "grader": grader,
        "evaluation": {"task": run.evaluation.task},
        "jobs": resolved["jobs"],
        "gate": {**run.gate.model_dump(), "metric": _plan_metric(run)},
        "budget": run.budget.model_dump(),
        "maxJobAttempts": MAX_JOB_ATTEMPTS,
        "artifactsBucket": artifacts_bucket,
        "runPrefix": f"s3://{artifacts_bucket}/{layout.run_prefix(run_id)}",
    }
    return plan, initial_stage_records(stages, resume)


def _plan_metric(run: RunInput) -> str:
    """The metric name the gate looks up: gen_qa names normalized as the results are (``rougeL`` -> ``rougel``)."""
    return metric_name(run.gate.metric) if run.evaluation.task == "gen_qa" else run.gate.metric


def initial_stage_records(stages: Mapping[str, bool], resume: Mapping[str, Any] | None) -> dict:
    """``PENDING`` for stages that will run, ``SKIPPED`` for the others; a resumed checkpoint is kept."""
    records: dict[str, dict] = {}
    for stage in naming.STAGES:
        records[stage] = {"status": "PENDING" if stages[stage] else "SKIPPED"}
    if resume is not None:
        holder = "sft" if resume["stage"] == "rft" else "rft"
        records[holder] = {"status": "SKIPPED", "checkpoint": resume["checkpoint"], "resumed": True}
    return records
