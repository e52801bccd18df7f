"""The typed run schema: the run input, the run plan, job attempts, stage records and the run record.

Every producer and reader of these shapes uses the models here: the run input a user pastes
(:class:`RunInput`), the plan "Validate run" resolves (:class:`Plan`, ``$.plan``), the job of one
attempt of a stage (:class:`JobAttempt`, ``$.job``), the stage records (:class:`StageRecord`,
``$.stages.<stage>`` and ``run.json`` ``stages``), the run state the state machine hands to "Record
run" (:class:`RunState`) and the run record (:class:`RunRecord`, ``runs/<run-id>/run.json``).

Field names are the JSON names (camelCase, as the state machine selects them: ``$.plan.runId``,
``$.job.request.image``), so :meth:`Record.to_json` is what crosses Step Functions and S3. The
enabled-stage flags of a plan are ``plan.enabled``; ``stages`` always means stage records (the run
input keeps its user-facing ``stages`` key for the flags).

The run input::

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
      "resumeFrom": {"stage": "rft", "run": "<earlier run id>",
                     "checkpoint": "s3://customer-escrow-<account>-smtj-<id>/.../checkpoint"},
      "description": "free text kept in the run record",
      "dryRun": false,
      "platform": "sagemaker"
    }

Only ``datasets`` is required. ``dryRun`` true runs "Validate run" and "Preflight checks" only and
records the run as ``DRY_RUN`` (no training job starts). ``platform`` ``"bedrock"`` runs SFT and RFT as Bedrock
model customization jobs and the evaluations through Bedrock inference (docs/contracts/bedrock-customization.md):
no instance fields, the same short override keys mapped to Bedrock's hyperparameters, no ``resumeFrom``.
:mod:`lambdas.pipeline.validation` lists every problem of an input at once; :mod:`lambdas.pipeline.plan`
resolves a valid input into a plan.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1
MAX_RUNTIME_HOURS = 28 * 24  # SageMaker's MaxRuntimeInSeconds ceiling (28 days)

StageName = Literal["baselineEval", "sft", "sftEval", "rft", "finalEval"]
Method = Literal["sft", "rft", "eval"]
EvaluationTask = Literal["gen_qa", "rft_eval"]
# Where the jobs run: SageMaker training jobs with the Nova recipes, or Bedrock model customization jobs and
# Bedrock inference (docs/contracts/bedrock-customization.md).
Platform = Literal["sagemaker", "bedrock"]
StageStatus = Literal["PENDING", "SKIPPED", "SUCCEEDED", "FAILED", "NOT_COMPLETED"]
# ABORTED: only the notify function records it (an execution stopped before "Record run"); so is REFUSED, an
# execution that could not take the run lock (another run was active) and started nothing.
# DRY_RUN: a run input with ``dryRun`` true, which stops after preflight, before any GPU.
# REJECTED / APPROVAL_EXPIRED: with approval required (context ``approval``), a run whose gate passed and that was
# rejected, or not decided within ``approvalTimeoutHours`` (:mod:`lambdas.pipeline.approval`); nothing is deployed.
RunStatus = Literal[
    "SUCCEEDED", "FAILED", "GATE_REJECTED", "ABORTED", "REFUSED", "DRY_RUN", "REJECTED", "APPROVAL_EXPIRED"
]
FINAL_RUN_STATUSES: tuple[RunStatus, ...] = (
    "SUCCEEDED",
    "FAILED",
    "GATE_REJECTED",
    "ABORTED",
    "REFUSED",
    "DRY_RUN",
    "REJECTED",
    "APPROVAL_EXPIRED",
)


class Record(BaseModel):
    """A shape this project writes: unknown fields are an error, JSON names are the field names."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON-compatible dict that crosses Step Functions and S3."""
        return self.model_dump(mode="json")


# -- the run input (what a user pastes) ---------------------------------------------------------------


# Length limits of the input's free strings, so that no input can make the execution state large.
MAX_URI = 1100  # s3:// + a 63-character bucket + a 1,024-byte key
MAX_NAME = 128
MAX_OVERRIDES = 40


class _Input(BaseModel):
    # allow_inf_nan=False: ``1e309`` parses as infinity and ``NaN`` as NaN; neither is a number a run may use.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class InputDatasets(_Input):
    """S3 URIs (``s3://<data bucket>/datasets/...``) of JSONL files.

    ``sft`` (Converse format) is needed when SFT runs, ``rft`` when RFT runs, ``eval``
    always (the final evaluation feeds the quality gate).
    """

    sft: str | None = Field(default=None, max_length=MAX_URI)
    rft: str | None = Field(default=None, max_length=MAX_URI)
    eval: str | None = Field(default=None, max_length=MAX_URI)


class InputStages(_Input):
    """Which stages run (the input's ``stages``). Evaluations of SFT and the final evaluation follow."""

    baselineEval: bool = True
    sft: bool = True
    rft: bool = True
    deploy: bool = True


class TrainingSettings(_Input):
    """Overrides of the base recipe (short keys, listed in the error when unknown) and the job's size.

    ``instanceCount`` is the recipe's ``run.replicas``; ``overrides.replicas`` is accepted as a synonym.
    ``maxRuntimeHours`` becomes ``MaxRuntimeInSeconds`` and is what the budget check charges.
    """

    overrides: dict[str, Any] = Field(default_factory=dict, max_length=MAX_OVERRIDES)
    instanceType: str | None = Field(default=None, max_length=MAX_NAME)
    instanceCount: int | None = Field(default=None, ge=1)
    maxRuntimeHours: float | None = Field(default=None, gt=0, le=MAX_RUNTIME_HOURS)


class EvaluationSettings(_Input):
    """Evaluation jobs: ``gen_qa`` (dataset rows ``{"query", "response"}``) or ``rft_eval`` (RFT rows, scored
    by the grader), inference overrides, instance type and maximum runtime of each evaluation job."""

    task: EvaluationTask = "gen_qa"
    overrides: dict[str, Any] = Field(default_factory=dict, max_length=MAX_OVERRIDES)
    instanceType: str | None = Field(default=None, max_length=MAX_NAME)
    maxRuntimeHours: float | None = Field(default=None, gt=0, le=MAX_RUNTIME_HOURS)


class Gate(_Input):
    """The candidate's ``metric`` must reach ``minScore``, beat the baseline by ``minGainOverBaseline`` and,
    with ``mustBeatDeployed``, beat the model this pipeline deployed last.

    With ``gen_qa`` the metric is one of :data:`lambdas.pipeline.metrics.GEN_QA_METRICS` (spelled as
    reported, e.g. ``rougeL``, or normalized); with ``rft_eval`` it must be given explicitly:
    ``aggregate_reward_score`` (the mean reward) or a ``metrics_list`` name of the grader, spelled as the
    grader spells it."""

    metric: str = Field(default="exact_match", min_length=1, max_length=MAX_NAME)
    minScore: float = 0.0
    minGainOverBaseline: float = 0.0
    mustBeatDeployed: bool = True


class Budget(_Input):
    """Upper bound of the GPU cost estimate (instances x count x max runtime x on-demand price)."""

    maxUsd: float = Field(default=2000.0, gt=0)


class ResumeFrom(_Input):
    """Start a later stage from a checkpoint of an earlier run of this pipeline.

    ``rft``: train RFT from this checkpoint (SFT is skipped). ``finalEval``: evaluate this checkpoint
    and import it (SFT and RFT are skipped). ``run`` is the earlier run's id: its record,
    ``runs/<run>/run.json`` in the artifacts bucket, must hold ``checkpoint`` as ``stages.sft.checkpoint``
    or ``stages.rft.checkpoint``. ``checkpoint`` must be a training-job checkpoint of this account,
    ``s3://customer-escrow-<account>-smtj-<id>/<key>`` (:func:`lambdas.pipeline.s3uri.check_checkpoint_uri`).
    """

    stage: Literal["rft", "finalEval"]
    checkpoint: str = Field(max_length=MAX_URI)
    run: str | None = Field(default=None, max_length=MAX_NAME)


class RunInput(_Input):
    """The console input of one run."""

    datasets: InputDatasets
    model: str = Field(default="nova-2-lite", max_length=MAX_NAME)
    grader: str = Field(default="classification", max_length=MAX_NAME)
    stages: InputStages = Field(default_factory=InputStages)
    sft: TrainingSettings = Field(default_factory=TrainingSettings)
    rft: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    gate: Gate = Field(default_factory=Gate)
    budget: Budget = Field(default_factory=Budget)
    resumeFrom: ResumeFrom | None = None
    description: str | None = Field(default=None, max_length=1000)
    dryRun: bool = False
    platform: Platform = "sagemaker"


# -- the run plan ($.plan) ----------------------------------------------------------------------------


class ModelRef(Record):
    """The base model, as the catalog names it."""

    key: str
    modelType: str
    modelNameOrPath: str


class Enabled(Record):
    """Which stages run, ``resumeFrom`` applied and the SFT evaluation derived."""

    baselineEval: bool
    sft: bool
    sftEval: bool
    rft: bool
    finalEval: bool
    deploy: bool

    def runs(self, stage: str) -> bool:
        """Whether ``stage`` (a job stage or ``deploy``) runs."""
        return bool(getattr(self, stage, False))


class DatasetRef(Record):
    """A dataset the run reads: where it is, the version Validate run saw, and the copy the jobs read."""

    uri: str
    etag: str
    sizeBytes: int
    versionId: str | None = None
    stagedUri: str | None = None


class PlanDatasets(Record):
    sft: DatasetRef | None = None
    rft: DatasetRef | None = None
    eval: DatasetRef

    def get(self, name: str) -> DatasetRef | None:
        value = getattr(self, name, None)
        return value if isinstance(value, DatasetRef) else None

    def require(self, name: str) -> DatasetRef:
        found = self.get(name)
        if found is None:
            raise KeyError(f"the plan has no {name} dataset")
        return found


class GraderRef(Record):
    name: str
    arn: str
    version: str | None = None


class EvaluationPlan(Record):
    task: EvaluationTask


class JobSettings(Record):
    """The resolved size and overrides of one method's jobs (no instances on platform ``bedrock``: Bedrock
    chooses the hardware)."""

    instanceType: str | None = None
    instanceCount: int | None = None
    maxRuntimeSeconds: int
    overrides: dict[str, Any] = Field(default_factory=dict)

    def instances(self) -> tuple[str, int]:
        """``(instance type, count)`` of a SageMaker job; ValueError for a job without instances (Bedrock)."""
        if self.instanceType is None or self.instanceCount is None:
            raise ValueError("these jobs have no instances: Bedrock chooses the hardware of its customization jobs")
        return self.instanceType, self.instanceCount


class PlanJobs(Record):
    sft: JobSettings | None = None
    rft: JobSettings | None = None
    eval: JobSettings

    def of(self, method: str) -> JobSettings:
        found = getattr(self, method, None)
        if not isinstance(found, JobSettings):
            raise KeyError(f"the plan has no {method} job settings")
        return found


class GateSettings(Record):
    """The gate of the plan: ``metric`` is the name the evaluation results use (gen_qa names normalized)."""

    metric: str
    minScore: float
    minGainOverBaseline: float
    mustBeatDeployed: bool


class PlanResume(Record):
    """The checkpoint a run starts from, and the earlier run whose ``run.json`` recorded it."""

    stage: Literal["rft", "finalEval"]
    checkpoint: str
    run: str | None = None


class PlanBudget(Record):
    maxUsd: float


class BedrockPlan(Record):
    """How the run uses Bedrock on platform ``bedrock`` (docs/contracts/bedrock-customization.md).

    ``baseModelIdentifier``: the base model as CreateModelCustomizationJob takes it; ``inferenceModelId``: the
    base model as Converse takes it (an inference profile where the model has no in-Region on-demand
    throughput); ``rftStartsFrom``: the model RFT customizes (``base``: the base model, not SFT's model).
    """

    baseModelIdentifier: str
    inferenceModelId: str
    rftStartsFrom: Literal["sft", "base"] = "base"


class Plan(Record):
    """The run plan "Validate run" resolves; every later state reads it (``$.plan``).

    ``platform``: the road the jobs take, SageMaker training jobs or Bedrock model customization jobs
    (:mod:`lambdas.pipeline.bedrock` for what the run does with the Bedrock road's models)."""

    runId: str
    pipelineName: str
    platform: Platform = "sagemaker"
    executionArn: str | None = None
    startedAt: str | None = None
    description: str | None = None
    model: ModelRef
    enabled: Enabled
    resumeFrom: PlanResume | None = None
    datasets: PlanDatasets
    grader: GraderRef | None = None
    evaluation: EvaluationPlan
    jobs: PlanJobs
    gate: GateSettings
    budget: PlanBudget
    maxJobAttempts: int
    artifactsBucket: str
    runPrefix: str
    dryRun: bool = False
    bedrock: BedrockPlan | None = None
    # What the run does differently from what the input may suggest (shown in the report), e.g. RFT on Bedrock
    # starting from the base model.
    notes: list[str] = Field(default_factory=list)


# -- job attempts ($.job) ------------------------------------------------------------------------------


class StepError(BaseModel):
    """An error Step Functions caught (``Error``, ``Cause``), as a Catch's ``ResultPath`` stores it."""

    model_config = ConfigDict(extra="ignore")

    Error: str | None = None
    Cause: str | None = None


class AttemptError(Record):
    """Why an earlier attempt of a stage failed."""

    attempt: int | None = None
    job: str | None = None
    error: str
    cause: str


class JobRequest(Record):
    """The dynamic parts of a ``CreateTrainingJob`` request (the state machine passes them with ``.$``)."""

    image: str
    recipeUri: str
    recipeFile: str
    dataUri: str
    outputPath: str
    outputArchive: str
    modelLocation: str
    instanceType: str
    instanceCount: int
    volumeSizeInGb: int
    maxRuntimeInSeconds: int
    hyperParameters: dict[str, str]


class BedrockTrainingRequest(Record):
    """The dynamic parts of a ``CreateModelCustomizationJob`` request (platform ``bedrock``; the state machine
    passes them with ``.$``): ``hyperParameters`` is Bedrock's map of strings (SFT), ``rftHyperParameters`` the
    typed ``customizationConfig.rftConfig.hyperParameters`` and ``graderArn`` its grader (RFT)."""

    customModelName: str
    baseModelIdentifier: str
    customizationType: Literal["FINE_TUNING", "REINFORCEMENT_FINE_TUNING"]
    trainingDataUri: str
    outputUri: str
    hyperParameters: dict[str, str] | None = None
    rftHyperParameters: dict[str, Any] | None = None
    graderArn: str | None = None
    # How long the job may run (the Task's TimeoutSecondsPath; plan.jobs.<method>.maxRuntimeSeconds).
    maxRuntimeSeconds: int = Field(ge=1)


class BedrockEvaluationRequest(Record):
    """What an evaluation through Bedrock inference evaluates (``lambdas.pipeline.bedrock_eval.evaluation_request``).

    ``modelId`` is what Converse takes for the baseline (the base model's inference id); a candidate has
    ``customModelArn`` instead, deployed on demand as ``deploymentName`` first. ``inference`` holds Converse's
    ``inferenceConfig`` and, when set, ``additionalModelRequestFields``."""

    task: EvaluationTask
    model: str
    modelId: str | None = None
    customModelArn: str | None = None
    deploymentName: str | None = None
    clientRequestToken: str | None = None
    dataUri: str
    outputPrefix: str
    inference: dict[str, Any]
    concurrency: int = Field(ge=1)
    graderArn: str | None = None
    maxErrorRate: float = Field(ge=0, le=1)


class JobResult(BaseModel):
    """What the state machine keeps of the finished training job."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    status: str | None = None
    arn: str | None = None
    # The job's BillableTimeInSeconds (lambdas.pipeline.billing).
    billableSeconds: int | None = Field(default=None, ge=0)


class RetryDecision(Record):
    """Whether a failed job attempt is retried, after how many seconds, and why."""

    retry: bool
    delaySeconds: int = Field(ge=0)
    reason: str


class JobAttempt(Record):
    """The job of one stage (``$.job``): attempt 0 is the stage's start (``stage``, ``startedAt``,
    ``errors``); each prepared attempt adds the job name and its request; the state machine adds the
    job's ``result`` or the ``lastError`` it caught."""

    stage: StageName | None = None
    name: str | None = None
    attempt: int = 0
    startedAt: str | None = None
    errors: list[AttemptError] = Field(default_factory=list)
    # Earlier attempts' billable seconds, and how many of them had unknown seconds (lambdas.pipeline.billing).
    billableSeconds: int = Field(default=0, ge=0)
    unknownBillingAttempts: int = Field(default=0, ge=0)
    request: JobRequest | BedrockTrainingRequest | BedrockEvaluationRequest | None = None
    result: JobResult | None = None
    # Bedrock evaluation: the progress EvaluateOnBedrock returns (lambdas.pipeline.bedrock_eval).
    evaluation: dict[str, Any] | None = None
    lastError: StepError | None = None
    # After a failed attempt: whether it is retried (lambdas.pipeline.retry), or why deciding failed.
    decision: RetryDecision | None = None
    decisionError: StepError | None = None

    def prepared_request(self) -> JobRequest:
        """The SageMaker training job request of this attempt."""
        if not isinstance(self.request, JobRequest):
            raise ValueError(f"job {self.name or self.stage} has no training job request: it was never prepared")
        return self.request


# -- stage records ($.stages, run.json stages) ---------------------------------------------------------


class StageError(Record):
    error: str | None = None
    cause: str


class NotedFailure(Record):
    """A failure the state machine noted in a stage beside training (its branch goes on)."""

    stage: StageName
    job: JobAttempt


class MetricStats(Record):
    """How a metric averaged over per-sample results was measured: ``n`` samples and the standard error of
    the mean (sample standard deviation / sqrt(n); ``None`` below two samples)."""

    n: int
    stderr: float | None = None


class StageRecord(Record):
    """What the run keeps of one job stage.

    ``status`` always; once a job ran: its name, ARN, attempts, times, ``checkpoint`` (training) or
    ``metrics`` (evaluation; ``metricStats`` for the metrics averaged over per-sample results), what it
    read and started from, its instances and earlier attempts' errors. ``resumed``: the checkpoint came
    from ``resumeFrom``. ``failure``: noted by the state machine, turned into ``error`` when the run is
    recorded.
    """

    status: StageStatus
    jobName: str | None = None
    jobArn: str | None = None
    # Platform bedrock: the customization job's output model (training), the provisional deployment an
    # evaluation invoked (None for the baseline).
    customModelArn: str | None = None
    deploymentArn: str | None = None
    attempts: int | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] | None = None
    metricStats: dict[str, MetricStats] | None = None
    recipeUri: str | None = None
    outputUri: str | None = None
    modelLocation: str | None = None
    instanceType: str | None = None
    instanceCount: int | None = None
    # What the job's attempts cost, failed ones included: billable seconds per instance, attempts whose seconds
    # are unknown (counted as 0), and seconds x instances x the catalog price (lambdas.pipeline.billing).
    billableSeconds: int | None = Field(default=None, ge=0)
    unknownBillingAttempts: int = Field(default=0, ge=0)
    actualUsd: float | None = None
    earlierAttempts: list[AttemptError] = Field(default_factory=list)
    error: StageError | None = None
    resumed: bool = False
    failure: NotedFailure | None = None


class StageRecords(Record):
    """The record of every job stage (all five always present)."""

    baselineEval: StageRecord
    sft: StageRecord
    sftEval: StageRecord
    rft: StageRecord
    finalEval: StageRecord

    def of(self, stage: str) -> StageRecord:
        found = getattr(self, stage, None)
        if not isinstance(found, StageRecord):
            raise KeyError(f"unknown stage {stage!r}")
        return found

    def items(self) -> list[tuple[str, StageRecord]]:
        return [(name, self.of(name)) for name in type(self).model_fields]

    def replace(self, stage: str, record: StageRecord) -> StageRecords:
        self.of(stage)
        return self.model_copy(update={stage: record})


# -- what preflight found ($.preflight) ------------------------------------------------------------------


class CostItem(Record):
    """One charge of one stage: its worst case (``usd``) and its estimate (None when it cannot be made).

    On SageMaker a charge is a job's instances for ``maxHours`` (``estimatedHours`` expected). On Bedrock it is
    ``quantity`` (worst case) and ``expectedQuantity`` of ``unit`` at ``unitUsd`` each (tokens trained, model-months
    stored, training hours, inference tokens), described by ``basis``; the instance fields are None and
    ``maxHours`` is the stage's maximum runtime (a timeout there).
    """

    stage: StageName
    instanceType: str | None = None
    instanceCount: int | None = None
    maxHours: float
    usd: float
    estimatedHours: float | None = None
    expectedUsd: float | None = None
    unit: str | None = None
    unitUsd: float | None = None
    quantity: float | None = None
    expectedQuantity: float | None = None
    basis: str | None = None


class CostEstimate(Record):
    """The worst-case GPU cost (every job that runs, for its full maximum runtime), and the expected one.

    ``expectedUsd`` charges each job its estimated duration (:mod:`lambdas.pipeline.estimate`);
    ``runtimeWarnings`` names every job whose maximum runtime is shorter than its estimate.
    """

    estimatedUsd: float
    maxUsd: float
    items: list[CostItem]
    expectedUsd: float | None = None
    runtimeWarnings: list[str] = Field(default_factory=list)
    # Bedrock: where the prices come from, and prices the table does not hold as published.
    priceNotes: list[str] = Field(default_factory=list)


class LargestJob(Record):
    stage: StageName
    instances: int


class BusiestPhase(Record):
    stages: list[StageName]
    instances: int


class QuotaEntry(Record):
    """One GPU instance type the plan uses: its quota (``None`` when unread) and what the plan needs."""

    instanceType: str
    quotaName: str
    quotaCode: str | None = None
    quota: float | None = None
    source: str | None = None
    largestJob: LargestJob
    peak: BusiestPhase


class ServiceQuota(Record):
    """One Bedrock quota a run depends on: what the run needs of it and its value (``None`` when unread)."""

    need: str
    needed: float
    quotaName: str | None = None
    quotaCode: str | None = None
    quota: float | None = None
    source: str | None = None


class QuotaSummary(Record):
    status: Literal["checked", "not needed", "unchecked", "partly checked"]
    reason: str | None = None
    instanceTypes: list[QuotaEntry] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    bedrock: list[ServiceQuota] = Field(default_factory=list)


class DatasetReport(Record):
    """A dataset as preflight streamed it, and the copy the jobs read."""

    kind: str
    rows: int
    bytes: int
    invalidLines: int
    firstErrors: list[str] = Field(default_factory=list)
    minRows: int | None = None
    duplicateRows: int = 0
    # SFT rows without ``schemaVersion``: the staged copy gains ``"bedrock-conversation-2024"`` on each.
    schemaVersionAdded: int = 0
    warnings: list[str] = Field(default_factory=list)
    stagedUri: str | None = None
    maxRows: int | None = None
    # Characters of text in valid rows (prompts and answers), and of answers alone: the token estimates.
    textChars: int = 0
    answerChars: int = 0


class LeakageSummary(Record):
    """Evaluation prompts found verbatim (whitespace-normalised) in the training data: a warning."""

    evalPrompts: int
    found: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class GraderCase(Record):
    case: str
    mean: float
    failing: int
    passed: bool


class GraderSmokeTest(Record):
    """The grader preflight ran against the deployed function, and how it scored."""

    name: str
    version: str | None = None
    arn: str
    passed: bool | None = None
    rowsSampled: int | None = None
    cases: list[GraderCase] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class PreflightSummary(Record):
    """``$.preflight``: what was checked before any GPU was paid for."""

    datasets: dict[str, DatasetReport]
    grader: GraderSmokeTest | None = None
    cost: CostEstimate
    quotas: QuotaSummary
    leakage: LeakageSummary | None = None


# -- results of the later states ------------------------------------------------------------------------


class MetricsTable(Record):
    baseline: dict[str, float] | None = None
    sft: dict[str, float] | None = None
    rft: dict[str, float] | None = None


class CollectedMetrics(Record):
    """``$.metrics``: the metric the gate judges, the candidate's column and the table."""

    metric: str
    candidate: Literal["sft", "rft"]
    table: MetricsTable
    failed: dict[str, str] = Field(default_factory=dict)

    def column(self, name: str) -> dict[str, float] | None:
        value = getattr(self.table, name, None)
        return value if isinstance(value, dict) else None


class GateCheck(Record):
    rule: str
    passed: bool
    detail: str


class ChampionSummary(Record):
    runId: str | None = None
    modelArn: str | None = None
    deploymentArn: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class GateDecision(Record):
    """``$.gate``; the run record adds the metric it judged."""

    passed: bool
    reasons: list[str]
    checks: list[GateCheck] = Field(default_factory=list)
    champion: ChampionSummary | None = None
    metric: str | None = None
    # The ETag of the champion record the gate read (None: there was none); the champion is replaced only if
    # it is still that version, so two runs cannot both replace it from the same reading.
    championEtag: str | None = None
    # The model the run imports and deploys: RFT's, or SFT's when the RFT model scored lower on the metric.
    candidate: Literal["sft", "rft"] | None = None


class Poll(Record):
    count: int
    waitSeconds: int
    exhausted: bool


class ImportedModel(Record):
    """``$.model``: the Bedrock custom model of the run.

    ``origin``: ``imported`` from a SageMaker checkpoint (``CreateCustomModel``), or ``customization``: made by a
    Bedrock customization job of the run and adopted as it is (no ``checkpoint``); ``stage`` is the stage whose
    model it is, ``provisionalDeploymentArn`` the on-demand deployment its evaluation created and ``note`` what
    the run did with it and why (:mod:`lambdas.pipeline.bedrock`)."""

    arn: str
    name: str
    checkpoint: str | None = None
    status: str
    failureMessage: str | None = None
    poll: Poll | None = None
    startedAt: str | None = None  # when the run asked Bedrock (the start state's entered time)
    endedAt: str | None = None  # the check that found it Active or Failed
    deletedAt: str | None = None  # deleted by the run: the gate rejected it or chose the other checkpoint
    origin: Literal["imported", "customization"] = "imported"
    stage: Literal["sft", "rft"] | None = None
    provisionalDeploymentArn: str | None = None
    note: str | None = None


ServingAction = Literal["created", "updated", "replaced", "adopted"]


class Deployment(Record):
    """``$.deployment``: the pipeline's on-demand deployment, serving the run's model.

    ``action`` says how (lambdas/pipeline/serving.py): ``created`` (the pipeline's first),
    ``updated`` (the stable deployment moved to this model; ``previousModelArn`` was served
    before), ``replaced`` (the update was refused: a new deployment, ``replacedDeploymentArn``
    is deleted once it is active) or ``adopted`` (the Bedrock road: the provisional deployment the model's
    evaluation created becomes the pipeline's, instead of a new one).
    """

    arn: str
    name: str
    modelArn: str
    status: str
    failureMessage: str | None = None
    poll: Poll | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    action: ServingAction = "created"
    previousModelArn: str | None = None
    replacedDeploymentArn: str | None = None


class ServedModel(Record):
    """A model the pipeline's deployment served before the champion's (newest first in ``Champion.history``)."""

    runId: str
    modelArn: str | None = None
    modelName: str | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    deployedAt: str | None = None
    runRecord: str | None = None
    deleted: bool = False


class Champion(Record):
    """``champions/<pipeline>.json``: what the next run's gate compares against."""

    pipeline: str
    runId: str
    modelArn: str | None = None
    modelName: str | None = None
    checkpoint: str | None = None
    deploymentArn: str | None = None
    deploymentName: str | None = None
    metric: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    evalDatasetEtag: str | None = None
    deployedAt: str | None = None
    runRecord: str | None = None
    history: list[ServedModel] = Field(default_factory=list)


# -- the run state ("Record run" reads it) and the run record (run.json) ----------------------------------


class Execution(Record):
    """The execution facts "Start run" keeps (``$.execution``)."""

    id: str | None = None
    name: str = ""
    startTime: str | None = None


class StageFailure(Record):
    """``$.stageFailure``: the job stage whose failure ends the run."""

    stage: StageName
    job: JobAttempt


class ApprovalDecision(Record):
    """The decision a waiting run received (the output of "Wait for approval"), or ``expired``."""

    model_config = ConfigDict(extra="ignore")

    decision: Literal["approve", "reject", "expired"]
    reason: str | None = None
    file: str | None = None
    decidedAt: str | None = None


class Approval(Record):
    """``$.approval``: whether the deployment requires approval (``required`` or ``none``) and the decision."""

    model_config = ConfigDict(extra="ignore")

    mode: str | None = None
    timeoutSeconds: int | None = None
    decision: ApprovalDecision | None = None


class RunState(BaseModel):
    """The state machine's state when a run ends (the ``run`` of "Record run" and "Record failed run").

    Fields other than these (``record``, ``job``...) are state the record does not keep.
    """

    model_config = ConfigDict(extra="ignore")

    input: Any = None
    execution: Execution = Field(default_factory=Execution)
    plan: Plan | None = None
    stages: StageRecords | None = None
    preflight: PreflightSummary | None = None
    metrics: CollectedMetrics | None = None
    gate: GateDecision | None = None
    model: ImportedModel | None = None
    deployment: Deployment | None = None
    approval: Approval | None = None
    error: StepError | None = None
    failedStage: str | None = None
    stageFailure: StageFailure | None = None


class ProvisionalDeployment(Record):
    """A provisional on-demand deployment an evaluation of the Bedrock road created, and what "Record run" did
    with it: ``serving`` (adopted as the pipeline's deployment), ``deleted``, ``already deleted`` or ``not
    deleted`` (``detail`` says why)."""

    stage: StageName
    arn: str
    outcome: Literal["serving", "deleted", "already deleted", "not deleted"]
    detail: str | None = None


class RunError(Record):
    """Why a run failed: the stage (a job stage or a state) and a readable cause."""

    stage: str
    error: str | None = None
    cause: str


class RunRecord(Record):
    """``runs/<run-id>/run.json``: one shape, whoever writes it (the pipeline, or the notify function for
    a run that ended before it could record itself).

    ``status``: ``SUCCEEDED``, ``GATE_REJECTED``, ``FAILED``, ``ABORTED`` or ``DRY_RUN``; ``executionStatus``: what
    Step Functions reported when the notify function wrote the record (``TIMED_OUT``...).
    """

    schemaVersion: Literal[1] = SCHEMA_VERSION
    runId: str = Field(min_length=1)
    pipeline: str = Field(min_length=1)
    status: RunStatus
    recordedBy: Literal["pipeline", "notify"] = "pipeline"
    executionStatus: str | None = None
    region: str | None = None
    executionArn: str | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    error: RunError | None = None
    input: Any = None
    plan: Plan | None = None
    datasets: PlanDatasets | None = None
    grader: GraderRef | None = None
    preflight: PreflightSummary | None = None
    stages: StageRecords | None = None
    metrics: CollectedMetrics | None = None
    gate: GateDecision | None = None
    model: ImportedModel | None = None
    deployment: Deployment | None = None
    approval: Approval | None = None
    provisionalDeployments: list[ProvisionalDeployment] = Field(default_factory=list)
    report: str | None = None
