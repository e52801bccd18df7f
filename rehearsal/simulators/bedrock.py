"""Simulated Bedrock: model customization jobs, custom-model import and on-demand deployment.

``CreateModelCustomizationJob``, ``GetModelCustomizationJob``, ``StopModelCustomizationJob``
and ``ListModelCustomizationJobs``: a job is ``InProgress`` (validation, data processing,
training, as ``statusDetails`` shows) until the calling flow's clock passes its simulated
duration (:class:`~rehearsal.simulators.faults.Durations`), then ``Completed`` with an
``outputModelArn`` this simulator knows as an ``Active`` custom model (deployable on demand
below), or ``Failed`` with a ``failureMessage``. A ``REINFORCEMENT_FINE_TUNING`` job calls
its grader (``customizationConfig.rftConfig.graderConfig.lambdaGrader.lambdaArn``) with
rollouts of its training rows, as Bedrock's trainer does, and fails when the grader breaks
the reward contract. Bedrock's own checks beyond botocore's shapes: the base model must
offer the method (Nova Micro/Lite/Pro and Nova 2 Lite for ``FINE_TUNING``, Nova 2 Lite
alone for RFT), an RFT job needs a Lambda grader, ``hyperParameters`` of Nova SFT are the
documented ones within their ranges, job and model names are unique; the job's validation phase
fails it when the training data is not what Bedrock reads (:meth:`BedrockSimulator._training_data_problem`).

``CreateCustomModel``, ``GetCustomModel``, ``ListCustomModels``, ``DeleteCustomModel``
and the same for ``...CustomModelDeployment``: ``Creating`` until the calling
flow's clock passes the simulated duration, then ``Active`` or ``Failed``;
``clientRequestToken`` is idempotent; an import must point at a checkpoint a
simulated job produced.

``UpdateCustomModelDeployment`` moves an ``Active`` deployment to another ``Active``
model: the deployment stays ``Active`` and serves the old model while
``updateDetails.updateStatus`` is ``Updating``, then serves the new one
(``UpdateCompleted``). A model that a live deployment serves cannot be deleted
(``ConflictException``). Requests are checked against the botocore service model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from rehearsal import clock
from rehearsal.simulators.faults import MINUTE, Durations, Faults, check_request, service_error, throttle_once
from rehearsal.simulators.grading import JobFailure, answers_correctly, grade, mean_reward, read_rows, rollout


@dataclass
class SimModel:
    arn: str
    name: str
    request: dict
    created: float
    ready: float
    failure: str | None
    epoch: dt.datetime
    deleted: bool = False
    # Deployments: the moves to other models, (model ARN, started, ready), oldest first.
    updates: list[tuple[str, float, float]] = field(default_factory=list)
    # Models: the training stage that produced the weights (sft | rft), and how the model was made.
    stage: str | None = None
    customization: str = "IMPORTED"

    def status(self) -> str:
        if clock.elapsed() < self.ready:
            return "Creating"
        return "Failed" if self.failure else "Active"

    def served_model(self) -> str:
        """A deployment's model: the last move that completed, else the model it was created with."""
        done = [arn for arn, _, ready in self.updates if clock.elapsed() >= ready]
        return done[-1] if done else str(self.request["modelArn"])

    def update_details(self) -> dict | None:
        if not self.updates:
            return None
        arn, _, ready = self.updates[-1]
        return {"modelArn": arn, "updateStatus": "Updating" if clock.elapsed() < ready else "UpdateCompleted"}


@dataclass
class SimCustomizationJob:
    """One model customization job; times are seconds on the simulated clock."""

    name: str
    arn: str
    stage: str  # sft | rft
    request: dict
    base_model_arn: str
    created: float
    ends: float
    epoch: dt.datetime
    model_arn: str
    planned: float  # seconds the job takes when nothing goes wrong
    status: str = "InProgress"
    failure: str | None = None
    invalid_data: str | None = None  # why the validation phase refuses the training data (the job fails then)
    grader_calls: int = 0
    mean_reward: float | None = None

    @property
    def minutes(self) -> float:
        return (self.ends - self.created) / MINUTE

    def phases(self) -> dict:
        """``statusDetails``: validation, data processing and training, one after the other over the planned
        duration; a job that failed or stopped shows it in the phase it was in, the later ones ``NotStarted``."""
        span = self.planned
        bounds = {
            "validationDetails": (self.created, self.created + 0.05 * span),
            "dataProcessingDetails": (self.created + 0.05 * span, self.created + 0.15 * span),
            "trainingDetails": (self.created + 0.15 * span, self.created + span),
        }
        now = min(clock.elapsed(), self.ends)
        details = {}
        for key, (begin, end) in bounds.items():
            if now < begin or (now == begin and self.status in ("Failed", "Stopped")):
                status = "NotStarted"
            elif now >= end:
                status = "Completed"
            else:
                status = self.status  # InProgress, or the phase it failed or stopped in
            details[key] = {
                "status": status,
                "creationTime": self._when(begin),
                "lastModifiedTime": self._when(min(max(now, begin), end)),
            }
        return details

    def _when(self, seconds: float) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=seconds)


class BedrockSimulator:
    """Custom-model import and on-demand deployment with Creating -> Active/Failed."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        epoch: dt.datetime,
        faults: Faults,
        durations: Durations,
        checkpoints: dict[str, str],
        invoke_lambda: Callable[[str, list], Any] | None = None,
    ) -> None:
        self.account = account
        self.region = region
        self.epoch = epoch
        self.faults = faults
        self.durations = durations
        self.checkpoints = checkpoints
        self.invoke_lambda = invoke_lambda
        self.jobs: dict[str, SimCustomizationJob] = {}
        self.rejected: list[dict] = []  # customization requests answered with an error: (name, stage, code)
        self._throttled: set[str] = set()
        self._s3_client: Any = None
        self.models: dict[str, SimModel] = {}
        self.deployments: dict[str, SimModel] = {}
        self.calls: list[tuple[str, float]] = []
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()

    def _when(self, seconds: float) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=seconds)

    def create_custom_model(self, params: dict) -> dict:
        check_request("bedrock", "CreateCustomModel", params)
        with self._lock:
            self.calls.append(("CreateCustomModel", clock.elapsed()))
            token = params.get("clientRequestToken")
            if token and ("model", token) in self._tokens:
                return {"modelArn": self._tokens[("model", token)]}
            if any(m.name == params["modelName"] and not m.deleted for m in self.models.values()):
                raise service_error("ConflictException", f"A model named {params['modelName']} already exists")
            uri = params.get("modelSourceConfig", {}).get("s3DataSource", {}).get("s3Uri")
            if not uri:
                raise service_error("ValidationException", "modelSourceConfig.s3DataSource.s3Uri is required")
            if not params.get("roleArn"):
                raise service_error("ValidationException", "roleArn is required to import a model from S3")
            failure = None
            if uri not in self.checkpoints:
                failure = f"The checkpoint {uri} does not exist or is not readable by the service role"
            elif self.faults.fail_at == "import":
                failure = "Model import failed: checkpoint validation error (failure injected by the rehearsal)"
            now = clock.elapsed()
            duration = self.durations.import_ * MINUTE * (0.4 if failure else 1)
            model_id = _short_id(params["modelName"], token)
            arn = f"arn:aws:bedrock:{self.region}:{self.account}:custom-model/imported/{model_id}"
            self.models[arn] = SimModel(
                arn,
                params["modelName"],
                params,
                now,
                now + duration,
                failure,
                self.epoch,
                stage=self.checkpoints.get(uri),
            )
            if token:
                self._tokens[("model", token)] = arn
            return {"modelArn": arn}

    def get_custom_model(self, params: dict) -> dict:
        model = self._model(params["modelIdentifier"])
        out = {
            "modelArn": model.arn,
            "modelName": model.name,
            "creationTime": self._when(model.created),
            "customizationType": model.customization,
            "modelStatus": model.status(),
        }
        if model.customization != "IMPORTED":
            job = self._job_of_model(model.arn)
            out.update(jobName=job.name, jobArn=job.arn, baseModelArn=job.base_model_arn)
            out["trainingDataConfig"] = job.request["trainingDataConfig"]
            out["outputDataConfig"] = job.request["outputDataConfig"]
        if model.request.get("modelKmsKeyArn"):
            out["modelKmsKeyArn"] = model.request["modelKmsKeyArn"]
        if out["modelStatus"] == "Failed":
            out["failureMessage"] = model.failure
        return out

    def list_custom_models(self, params: dict) -> dict:
        return {
            "modelSummaries": [
                {
                    "modelArn": m.arn,
                    "modelName": m.name,
                    "creationTime": self._when(m.created),
                    "baseModelArn": "",
                    "baseModelName": "",
                    "customizationType": m.customization,
                    "modelStatus": m.status(),
                }
                for m in self.models.values()
                if not m.deleted
                and params.get("nameContains", "") in m.name
                and params.get("modelStatus", m.status()) == m.status()
            ]
        }

    def delete_custom_model(self, params: dict) -> dict:
        check_request("bedrock", "DeleteCustomModel", params)
        with self._lock:
            self.calls.append(("DeleteCustomModel", clock.elapsed()))
            model = self._model(params["modelIdentifier"])
            serving = [d.arn for d in self.deployments.values() if not d.deleted and model.arn in _models_of(d)]
            if serving:
                raise service_error("ConflictException", f"Model {model.arn} is used by deployment {serving[0]}")
            model.deleted = True
            return {}

    def create_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "CreateCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("CreateCustomModelDeployment", clock.elapsed()))
            token = params.get("clientRequestToken")
            if token and ("deployment", token) in self._tokens:
                return {"customModelDeploymentArn": self._tokens[("deployment", token)]}
            model = self._model(params["modelArn"])
            if model.status() != "Active":
                raise service_error("ValidationException", f"Model {model.arn} is {model.status()}, not Active")
            if any(d.name == params["modelDeploymentName"] and not d.deleted for d in self.deployments.values()):
                raise service_error(
                    "ConflictException", f"A deployment named {params['modelDeploymentName']} already exists"
                )
            failure = (
                "Deployment failed: insufficient capacity (failure injected by the rehearsal)"
                if self.faults.fail_at == "deploy"
                else None
            )
            now = clock.elapsed()
            duration = self.durations.deploy * MINUTE * (0.4 if failure else 1)
            arn = (
                f"arn:aws:bedrock:{self.region}:{self.account}:custom-model-deployment/"
                f"{_short_id(params['modelDeploymentName'], token)}"
            )
            self.deployments[arn] = SimModel(
                arn, params["modelDeploymentName"], params, now, now + duration, failure, self.epoch
            )
            if token:
                self._tokens[("deployment", token)] = arn
            return {"customModelDeploymentArn": arn}

    def get_custom_model_deployment(self, params: dict) -> dict:
        deployment = self._deployment(params["customModelDeploymentIdentifier"])
        out = {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.served_model(),
            "createdAt": self._when(deployment.created),
            "status": deployment.status(),
            "lastUpdatedAt": self._when(min(clock.elapsed(), deployment.ready)),
        }
        if deployment.request.get("description"):
            out["description"] = deployment.request["description"]
        if out["status"] == "Failed":
            out["failureMessage"] = deployment.failure
        details = deployment.update_details()
        if details:
            out["updateDetails"] = details
            out["lastUpdatedAt"] = self._when(min(clock.elapsed(), deployment.updates[-1][2]))
        return out

    def update_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "UpdateCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("UpdateCustomModelDeployment", clock.elapsed()))
            deployment = self._deployment(params["customModelDeploymentIdentifier"])
            model = self._model(params["modelArn"])
            problems = []
            if deployment.status() != "Active":
                problems.append(f"Deployment {deployment.arn} is {deployment.status()}, not Active")
            details = deployment.update_details()
            if details and details["updateStatus"] == "Updating":
                problems.append(f"Deployment {deployment.arn} is already updating to {details['modelArn']}")
            if model.status() != "Active":
                problems.append(f"Model {model.arn} is {model.status()}, not Active")
            if problems:
                raise service_error("ValidationException", "; ".join(problems))
            now = clock.elapsed()
            deployment.updates.append((model.arn, now, now + self.durations.deploy * MINUTE))
            return {"customModelDeploymentArn": deployment.arn}

    def list_custom_model_deployments(self, params: dict) -> dict:
        return {
            "modelDeploymentSummaries": [
                {
                    "customModelDeploymentArn": d.arn,
                    "customModelDeploymentName": d.name,
                    "modelArn": d.served_model(),
                    "createdAt": self._when(d.created),
                    "status": d.status(),
                }
                for d in self.deployments.values()
                if not d.deleted and params.get("modelArnEquals", d.served_model()) == d.served_model()
            ]
        }

    def delete_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "DeleteCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("DeleteCustomModelDeployment", clock.elapsed()))
            self._deployment(params["customModelDeploymentIdentifier"]).deleted = True
            return {}

    # -- model customization ---------------------------------------------------------------

    def create_model_customization_job(self, params: dict) -> dict:
        check_request("bedrock", "CreateModelCustomizationJob", params)
        with self._lock:
            name = params["jobName"]
            kind = params.get("customizationType", "FINE_TUNING")
            stage = "rft" if kind == "REINFORCEMENT_FINE_TUNING" else "sft"
            self.calls.append(("CreateModelCustomizationJob", clock.elapsed()))
            token = params.get("clientRequestToken")
            if token and ("job", token) in self._tokens:
                return {"jobArn": self._tokens[("job", token)]}
            if code := throttle_once(self.faults, stage, self._throttled):
                self.rejected.append({"name": name, "stage": stage, "error": code})
                quota = f"The quota for concurrent {kind} jobs in this account is reached"
                raise service_error(code, _TOO_MANY if "Throttl" in code else quota)
            if problems := self._customization_problems(params, kind):
                self.rejected.append({"name": name, "stage": stage, "error": "ValidationException"})
                raise service_error("ValidationException", "; ".join(problems))
            base_id = _base_model_id(params["baseModelIdentifier"], self.models)
            suffix = _short_id(name, token)
            now = clock.elapsed()
            minutes = self.durations.bedrock_rft if stage == "rft" else self.durations.bedrock_sft
            injected = self.faults.fail_at == stage
            invalid = self._training_data_problem(params["trainingDataConfig"]["s3Uri"], kind)
            job = SimCustomizationJob(
                name=name,
                arn=f"arn:aws:bedrock:{self.region}:{self.account}:model-customization-job/{base_id}/{suffix}",
                stage=stage,
                request=_json_copy(params),
                base_model_arn=f"arn:aws:bedrock:{self.region}::foundation-model/{base_id}",
                created=now,
                ends=now + minutes * MINUTE * (0.04 if invalid else 0.4 if injected else 1),
                planned=minutes * MINUTE,
                epoch=self.epoch,
                model_arn=f"arn:aws:bedrock:{self.region}:{self.account}:custom-model/{base_id}/{suffix}",
                invalid_data=invalid,
            )
            self.jobs[name] = job
            if token:
                self._tokens[("job", token)] = job.arn
            return {"jobArn": job.arn}

    def get_model_customization_job(self, params: dict) -> dict:
        check_request("bedrock", "GetModelCustomizationJob", params)
        job = self._customization_job(params["jobIdentifier"])
        self._settle_job(job)
        return self._describe_job(job)

    def stop_model_customization_job(self, params: dict) -> dict:
        check_request("bedrock", "StopModelCustomizationJob", params)
        job = self._customization_job(params["jobIdentifier"])
        self._settle_job(job)
        with self._lock:
            self.calls.append(("StopModelCustomizationJob", clock.elapsed()))
            if job.status != "InProgress":
                raise service_error(
                    "ValidationException", f"Job {job.name} is {job.status}: only a job in progress stops"
                )
            job.status, job.ends = "Stopped", max(clock.elapsed(), job.created)
        return {}

    def list_model_customization_jobs(self, params: dict) -> dict:
        check_request("bedrock", "ListModelCustomizationJobs", params)
        summaries = []
        for job in self.jobs.values():
            self._settle_job(job)
            if params.get("nameContains", "") not in job.name or params.get("statusEquals", job.status) != job.status:
                continue
            summary = {
                "jobArn": job.arn,
                "baseModelArn": job.base_model_arn,
                "jobName": job.name,
                "status": job.status,
                "creationTime": self._when(job.created),
                "customizationType": job.request.get("customizationType", "FINE_TUNING"),
            }
            if job.status == "Completed":
                summary.update(customModelArn=job.model_arn, customModelName=job.request["customModelName"])
            summaries.append(summary)
        return {"modelCustomizationJobSummaries": summaries}

    def run_job_to_completion(self, identifier: str) -> dict:
        """Advance the caller's clock to the job's end and return its final description."""
        job = self._customization_job(identifier)
        lane = clock.current()
        if lane is not None:
            lane.advance_to(job.ends)
        self._settle_job(job)
        return self._describe_job(job)

    def _describe_job(self, job: SimCustomizationJob) -> dict:
        request = job.request
        out: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "outputModelName": request["customModelName"],
            "roleArn": request["roleArn"],
            "status": job.status,
            "statusDetails": job.phases(),
            "creationTime": self._when(job.created),
            "lastModifiedTime": self._when(min(clock.elapsed(), job.ends)),
            "baseModelArn": job.base_model_arn,
            "hyperParameters": request.get("hyperParameters", {}),
            "trainingDataConfig": request["trainingDataConfig"],
            "validationDataConfig": request.get("validationDataConfig", {"validators": []}),
            "outputDataConfig": request["outputDataConfig"],
            "customizationType": request.get("customizationType", "FINE_TUNING"),
        }
        for member in ("clientRequestToken", "vpcConfig", "customizationConfig"):
            if member in request:
                out[member] = request[member]
        if request.get("customModelKmsKeyId"):
            out["outputModelKmsKeyArn"] = request["customModelKmsKeyId"]
        if job.status != "InProgress":
            out["endTime"] = self._when(job.ends)
        if job.status == "Completed":
            out["outputModelArn"] = job.model_arn
            out["trainingMetrics"] = {"trainingLoss": 0.42 if job.stage == "sft" else 0.31}
        if job.failure:
            out["failureMessage"] = job.failure
        return out

    def _customization_problems(self, params: dict, kind: str) -> list[str]:
        """What Bedrock refuses beyond botocore's shapes (the base model, the method's settings, names)."""
        problems = []
        base = params["baseModelIdentifier"]
        base_id = _base_model_id(base, self.models)
        offered = _CUSTOMIZATION_OFFERED.get(kind, ())
        if base_id is None:
            problems.append(
                f"baseModelIdentifier: {base} is neither a foundation model nor a custom model of this account"
            )
        elif not base_id.startswith(offered):
            problems.append(f"baseModelIdentifier: {base_id} does not support customization type {kind}")
        config = params.get("customizationConfig") or {}
        if len(config) > 1:
            problems.append(f"customizationConfig: set exactly one of its members, got {', '.join(sorted(config))}")
        rft = config.get("rftConfig")
        if kind == "REINFORCEMENT_FINE_TUNING":
            if not ((rft or {}).get("graderConfig") or {}).get("lambdaGrader"):
                problems.append("customizationConfig.rftConfig.graderConfig.lambdaGrader is required for RFT")
            if params.get("hyperParameters"):
                problems.append("hyperParameters: an RFT job takes customizationConfig.rftConfig.hyperParameters")
        elif rft is not None:
            problems.append(f"customizationConfig.rftConfig: only for REINFORCEMENT_FINE_TUNING, not {kind}")
        if kind == "FINE_TUNING":
            problems.extend(_sft_hyperparameter_problems(params.get("hyperParameters") or {}))
        if not params["trainingDataConfig"].get("s3Uri"):
            problems.append("trainingDataConfig.s3Uri is required")
        if params["jobName"] in self.jobs:
            problems.append(f"A model customization job named {params['jobName']} already exists")
        if any(m.name == params["customModelName"] and not m.deleted for m in self.models.values()) or any(
            j.request["customModelName"] == params["customModelName"] and j.status == "InProgress"
            for j in self.jobs.values()
        ):
            problems.append(f"A custom model named {params['customModelName']} already exists")
        return problems

    def _settle_job(self, job: SimCustomizationJob) -> None:
        """Finish the job if the caller's clock has passed its end: a custom model, or a failure message."""
        with self._lock:
            if job.status != "InProgress" or clock.elapsed() < job.ends:
                return
            try:
                if job.invalid_data:
                    raise JobFailure(job.invalid_data)
                if self.faults.fail_at == job.stage:
                    raise JobFailure(
                        "Internal error: the training job stopped unexpectedly while training "
                        "(failure injected by the rehearsal)"
                    )
                if job.stage == "rft":
                    self._grade_rollouts(job)
            except JobFailure as failure:
                job.status, job.failure = "Failed", str(failure)
                return
            job.status = "Completed"
            kms = job.request.get("customModelKmsKeyId")
            self.models[job.model_arn] = SimModel(
                job.model_arn,
                job.request["customModelName"],
                {"modelKmsKeyArn": kms} if kms else {},
                job.ends,
                job.ends,
                None,
                self.epoch,
                stage=job.stage,
                customization=job.request.get("customizationType", "FINE_TUNING"),
            )

    def _training_data_problem(self, uri: str, kind: str) -> str | None:
        """What Bedrock's validation phase refuses in the training data: nothing to read, a line that is not JSON,
        a record without ``messages``; for SFT a conversation that does not go user first, assistant last, with
        those two roles only (Amazon Nova User Guide, "Preparing data for fine-tuning Understanding models");
        for RFT fewer than 100 records (Amazon Bedrock User Guide, "Prepare data for Amazon Nova models")."""
        try:
            rows = read_rows(self._s3(), uri)
        except ValueError as error:
            return f"Validation error: {uri} holds a line that is not JSON ({error})"
        except ClientError as error:
            return f"Validation error: cannot read {uri} ({error.response['Error']['Code']})"
        if kind == "REINFORCEMENT_FINE_TUNING" and len(rows) < _RFT_MIN_RECORDS:
            return f"Validation error: {uri} holds {len(rows)} records; RFT takes at least {_RFT_MIN_RECORDS}"
        if not rows:
            return f"Validation error: {uri} holds no records"
        for number, row in enumerate(rows, start=1):
            messages = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(messages, list) or not messages:
                return f"Validation error: record {number} of {uri} has no messages"
            roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
            if kind == "FINE_TUNING" and (
                roles[0] != "user" or roles[-1] != "assistant" or set(roles) - {"user", "assistant"}
            ):
                return (
                    f"Validation error: record {number} of {uri} has the roles {roles}: the conversation takes "
                    "user and assistant turns only, user first, assistant last"
                )
        return None

    def _grade_rollouts(self, job: SimCustomizationJob) -> None:
        """Call the grader with rollouts of the job's training rows, answered by the model being trained."""
        grader = job.request["customizationConfig"]["rftConfig"]["graderConfig"]["lambdaGrader"]["lambdaArn"]
        if self.invoke_lambda is None:
            return
        rows = read_rows(self._s3(), job.request["trainingDataConfig"]["s3Uri"])[:_ROLLOUT_ROWS]
        if not rows:
            raise JobFailure("Validation error: the training data holds no prompts")
        quality = self.faults.metrics["rft"].get("exact_match", 0.5)
        batch = [_bedrock_item(rollout(row, i, correct=answers_correctly(i, quality))) for i, row in enumerate(rows)]
        scored = grade(self.invoke_lambda, grader, batch)
        job.grader_calls += 1
        job.mean_reward = mean_reward(scored)

    def _customization_job(self, identifier: str) -> SimCustomizationJob:
        for job in self.jobs.values():
            if identifier in (job.arn, job.name):
                return job
        raise service_error("ResourceNotFoundException", f"Model customization job {identifier} not found", 404)

    def _job_of_model(self, model_arn: str) -> SimCustomizationJob:
        return next(job for job in self.jobs.values() if job.model_arn == model_arn)

    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = boto3.client("s3", region_name=self.region)
        return self._s3_client

    def _model(self, identifier: str) -> SimModel:
        for model in self.models.values():
            if identifier in (model.arn, model.name) and not model.deleted:
                return model
        raise service_error("ResourceNotFoundException", f"Model {identifier} not found", 404)

    def _deployment(self, identifier: str) -> SimModel:
        for deployment in self.deployments.values():
            if identifier in (deployment.arn, deployment.name) and not deployment.deleted:
                return deployment
        raise service_error("ResourceNotFoundException", f"Deployment {identifier} not found", 404)


# Base models that offer each customization type on Bedrock (model ID prefixes): SFT for Nova Micro, Lite, Pro and
# Nova 2 Lite, RFT for Nova 2 Lite only (Amazon Bedrock User Guide, "Customize your model" and "Fine-tune Amazon Nova
# models with reinforcement fine-tuning", supported models).
_CUSTOMIZATION_OFFERED: dict[str, tuple[str, ...]] = {
    "FINE_TUNING": ("amazon.nova-micro-v1", "amazon.nova-lite-v1", "amazon.nova-pro-v1", "amazon.nova-2-lite-v1"),
    "REINFORCEMENT_FINE_TUNING": ("amazon.nova-2-lite-v1",),
}
# Nova SFT hyperparameters on Bedrock: (minimum, maximum), integers unless the bounds are floats (Amazon Bedrock User
# Guide, "Amazon Nova Understanding model customization hyperparameters": these three and no other).
_SFT_HYPERPARAMETERS: dict[str, tuple[float, float]] = {
    "epochCount": (1, 5),
    "learningRate": (1e-6, 1e-4),
    "learningRateWarmupSteps": (0, 100),
}
# Bedrock's message for a throttled request.
_TOO_MANY = "Too many requests, please wait before trying again."
# The fewest records an RFT job trains on (Amazon Bedrock User Guide, "Prepare data for Amazon Nova models").
_RFT_MIN_RECORDS = 100
# Training rows whose rollouts a simulated RFT job sends the grader (one call).
_ROLLOUT_ROWS = 8
_FOUNDATION = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]*::foundation-model/(?P<id>.+)")
_CUSTOM = re.compile(r"arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{12}:custom-model/(?P<id>[^/]+)/[a-z0-9]{12}")


def _base_model_id(identifier: str, models: dict[str, SimModel]) -> str | None:
    """The foundation model ID a customization starts from: the identifier's, or a known custom model's base."""
    for pattern in (_FOUNDATION, _CUSTOM):
        match = pattern.fullmatch(identifier)
        if match:
            custom = pattern is _CUSTOM
            if custom and (identifier not in models or models[identifier].deleted):
                return None
            return match["id"]
    return identifier if re.fullmatch(r"[a-z0-9-]+\.[a-z0-9-]+(:[a-z0-9-]+){0,2}", identifier) else None


def _sft_hyperparameter_problems(values: dict[str, str]) -> list[str]:
    problems = []
    for key, text in values.items():
        if key not in _SFT_HYPERPARAMETERS:
            problems.append(
                f"hyperParameters.{key}: not a hyperparameter of this model ({', '.join(_SFT_HYPERPARAMETERS)})"
            )
            continue
        low, high = _SFT_HYPERPARAMETERS[key]
        try:
            number = float(text) if isinstance(low, float) else int(text)
        except ValueError:
            problems.append(
                f"hyperParameters.{key}: {text!r} is not a {'number' if isinstance(low, float) else 'whole number'}"
            )
            continue
        if not low <= number <= high:
            problems.append(f"hyperParameters.{key}: {text} is out of range [{low:g}, {high:g}]")
    return problems


def _bedrock_item(item: dict) -> dict:
    """A grader item as Bedrock's RFT sends it: the reference answer inside ``metadata`` (Amazon Bedrock User Guide,
    "Setting up reward functions for Amazon Nova models")."""
    if "reference_answer" not in item:
        return item
    moved = {k: v for k, v in item.items() if k != "reference_answer"}
    moved["metadata"] = {**(item.get("metadata") or {}), "reference_answer": item["reference_answer"]}
    return moved


def _json_copy(value: Any) -> Any:
    """A deep copy through JSON, as a request reaches a service."""
    return json.loads(json.dumps(value, default=str))


def _models_of(deployment: SimModel) -> set[str]:
    """The models a deployment uses: the one it serves and the one it is moving to."""
    details = deployment.update_details()
    return {deployment.served_model(), *([details["modelArn"]] if details else [])}


def _short_id(name: str, token: str | None) -> str:
    return hashlib.sha1(f"{name}|{token or uuid.uuid4()}".encode()).hexdigest()[:12]
