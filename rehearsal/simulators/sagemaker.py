"""Simulated SageMaker training and evaluation jobs that take simulated time and write Nova-shaped outputs.

``CreateTrainingJob``, ``DescribeTrainingJob``, ``StopTrainingJob``, ``ListTrainingJobs``.
``CreateTrainingJob`` answers ``ResourceLimitExceeded`` when the job's instances and
those of jobs running at that simulated moment exceed the instance type's quota;
a job is ``InProgress`` until the calling flow's clock (:mod:`rehearsal.clock`)
passes its simulated duration, then writes ``<S3OutputPath>/<job>/output/output.tar.gz``
into (moto) S3: ``manifest.json`` with ``checkpoint_s3_bucket`` for training jobs;
for evaluation jobs, what their task documents (the task is read from the recipe
in the ``recipe`` channel): ``gen_qa`` writes ``eval-result/results_<time>.json``
with the metrics of :class:`Faults`, ``rft_eval`` writes per-sample JSONL,
``{id, aggregate_reward_score, metrics_list}`` for every row of its dataset, as
scored by the real grader. A simulated RFT job (grader in the ``reward_lambda_arn``
hyperparameter) and an ``rft_eval`` evaluation (grader in its recipe's
``rl_env.reward_lambda_arn``, the only place AWS puts it) call the reward Lambda
with answers built from their dataset (an evaluated model answers a share of the
rows correctly, its simulated exact match) and fail when the grader breaks the
reward contract, as the real jobs would. Failures and throttling come from
:class:`Faults`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

from lambdas.pipeline.quotas import quota_name
from offline.archive import put_archive
from rehearsal import clock
from rehearsal.simulators.faults import MINUTE, Durations, Faults, check_request, service_error, throttle_once
from rehearsal.simulators.grading import JobFailure, answers_correctly, grade, mean_reward, read_rows, rollout


@dataclass
class SimJob:
    name: str
    arn: str
    kind: str  # "training" | "evaluation"
    stage: str  # sft | rft | eval
    evaluates: str | None  # for evaluations: baseline | sft | rft
    request: dict
    created: float
    ends: float
    epoch: dt.datetime
    status: str = "InProgress"
    secondary: str = "Starting"
    failure_reason: str | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] | None = None
    grader_calls: int = 0
    mean_reward: float | None = None

    @property
    def output_uri(self) -> str:
        base = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{base}/{self.name}/output/output.tar.gz"

    @property
    def minutes(self) -> float:
        return (self.ends - self.created) / MINUTE

    def describe(self, *, json_safe: bool) -> dict:
        def when(seconds: float) -> Any:
            moment = self.epoch + dt.timedelta(seconds=seconds)
            return int(moment.timestamp() * 1000) if json_safe else moment

        out = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
            "HyperParameters": self.request.get("HyperParameters", {}),
            "AlgorithmSpecification": self.request.get("AlgorithmSpecification", {}),
            "RoleArn": self.request["RoleArn"],
            "InputDataConfig": self.request.get("InputDataConfig", []),
            "OutputDataConfig": self.request["OutputDataConfig"],
            "ResourceConfig": self.request.get("ResourceConfig", {}),
            "StoppingCondition": self.request.get("StoppingCondition", {}),
            "CreationTime": when(self.created),
            "TrainingStartTime": when(self.created),
            "LastModifiedTime": when(min(clock.elapsed(), self.ends) if self.status == "InProgress" else self.ends),
        }
        if self.status != "InProgress":
            out["TrainingEndTime"] = when(self.ends)
            out["TrainingTimeInSeconds"] = int(self.ends - self.created)
            out["BillableTimeInSeconds"] = int(self.ends - self.created)
        if self.status == "Completed":
            # Nova jobs leave the model in the escrow bucket; output.tar.gz points to it.
            out["ModelArtifacts"] = {"S3ModelArtifacts": self.output_uri}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out


class SageMakerSimulator:
    """Training and evaluation jobs that take simulated time and write Nova-shaped outputs."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        epoch: dt.datetime,
        faults: Faults,
        durations: Durations,
        invoke_lambda: Callable[[str, list], list] | None = None,
        quotas: dict[str, float] | None = None,
    ) -> None:
        self.account = account
        # instance type -> instances at once; with quotas given, a type not listed has 0 (the AWS default that
        # ServiceQuotasSimulator reports); without, nothing is limited
        self.quotas = None if quotas is None else dict(quotas)
        self.region = region
        self.epoch = epoch
        self.faults = faults
        self.durations = durations
        self.invoke_lambda = invoke_lambda
        self.jobs: dict[str, SimJob] = {}
        self.rejected: list[dict] = []  # create calls answered with an error: (name, stage, code)
        self.checkpoints: dict[str, str] = {}  # checkpoint URI -> stage that produced it
        self._throttled: set[str] = set()
        self._lock = threading.RLock()
        self._s3_client: Any = None
        self._escrow = f"customer-escrow-{account}-smtj-{hashlib.sha1(account.encode()).hexdigest()[:8]}"

    # -- API ---------------------------------------------------------------------------

    def create_training_job(self, params: dict) -> dict:
        check_request("sagemaker", "CreateTrainingJob", params)
        with self._lock:
            name = params["TrainingJobName"]
            kind, stage, evaluates = self._classify(params)
            if code := throttle_once(self.faults, stage, self._throttled):
                self.rejected.append({"name": name, "stage": stage, "error": code})
                limit = f"The account-level service limit for {stage} training job usage is exceeded"
                raise service_error(code, "Rate exceeded" if "Throttl" in code else limit)
            if problem := self._over_quota(params):
                self.rejected.append({"name": name, "stage": stage, "error": "ResourceLimitExceeded"})
                raise service_error("ResourceLimitExceeded", problem)
            if name in self.jobs:
                self.rejected.append({"name": name, "stage": stage, "error": "ResourceInUse"})
                raise service_error(
                    "ResourceInUse",
                    f"Training job names must be unique within an AWS account "
                    f"and region, and a training job with this name already exists "
                    f"({self.jobs[name].arn})",
                )
            minutes = {"sft": self.durations.sft, "rft": self.durations.rft}.get(stage, self.durations.eval)
            now = clock.elapsed()
            job = SimJob(
                name=name,
                arn=f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name.lower()}",
                kind=kind,
                stage=stage,
                evaluates=evaluates,
                request=json.loads(json.dumps(params)),
                created=now,
                ends=now + minutes * MINUTE,
                epoch=self.epoch,
            )
            if self._injected_failure(job):
                job.ends = now + minutes * MINUTE * 0.4
            self.jobs[name] = job
            return {"TrainingJobArn": job.arn}

    def describe_training_job(self, params: dict, *, json_safe: bool = False) -> dict:
        job = self._job(params["TrainingJobName"])
        self._settle(job)
        return job.describe(json_safe=json_safe)

    def stop_training_job(self, params: dict) -> dict:
        job = self._job(params["TrainingJobName"])
        self._settle(job)
        if job.status == "InProgress":
            job.status, job.secondary, job.ends = "Stopped", "Stopped", max(clock.elapsed(), job.created)
        return {}

    def list_training_jobs(self, params: dict) -> dict:
        jobs = [
            j
            for j in self.jobs.values()
            if params.get("NameContains", "") in j.name and params.get("StatusEquals", j.status) == j.status
        ]
        return {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": j.name,
                    "TrainingJobArn": j.arn,
                    "TrainingJobStatus": j.status,
                    "CreationTime": self.epoch + dt.timedelta(seconds=j.created),
                }
                for j in jobs
            ]
        }

    # -- .sync support -----------------------------------------------------------------

    def run_to_completion(self, name: str) -> dict:
        """Advance the caller's clock to the job's end and return its final description."""
        job = self._job(name)
        lane = clock.current()
        if lane is not None:
            lane.advance_to(job.ends)
        self._settle(job)
        return job.describe(json_safe=True)

    def register_checkpoint(self, uri: str, stage: str) -> None:
        """A checkpoint from an earlier run (``resumeFrom``)."""
        self.checkpoints[uri] = stage

    # -- internals ---------------------------------------------------------------------

    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = boto3.client("s3", region_name=self.region)
        return self._s3_client

    def _job(self, name: str) -> SimJob:
        if name not in self.jobs:
            raise service_error("ValidationException", f"Requested resource not found: training job {name}")
        return self.jobs[name]

    def _over_quota(self, params: dict) -> str | None:
        """SageMaker's answer when the job's instances and those of running jobs exceed the type's quota."""
        if self.quotas is None:
            return None
        kind = params["ResourceConfig"]["InstanceType"]
        limit = self.quotas.get(kind, 0)
        now = clock.elapsed()
        in_use = sum(
            int(j.request["ResourceConfig"]["InstanceCount"])
            for j in self.jobs.values()
            if j.request["ResourceConfig"]["InstanceType"] == kind and j.created <= now < j.ends
        )
        delta = int(params["ResourceConfig"]["InstanceCount"])
        if in_use + delta <= limit:
            return None
        return (
            f"The account-level service limit '{quota_name(kind)}' is {limit:g} Instances, with current "
            f"utilization of {in_use} Instances and a request delta of {delta} Instances. Please use AWS "
            f"Service Quotas to request an increase for this quota."
        )

    def _classify(self, params: dict) -> tuple[str, str, str | None]:
        """(kind, stage, evaluated model) from the image (repository and tag), else the job name."""
        image = params.get("AlgorithmSpecification", {}).get("TrainingImage", "")
        hyper = params.get("HyperParameters", {})
        name = params["TrainingJobName"].lower()
        tag = image.rpartition(":")[2].upper()
        is_eval = (
            "evaluation" in image
            or "-EVAL-" in tag
            or (not any(marker in tag for marker in ("-SFT-", "-RFT-")) and "eval" in name)
        )
        if is_eval:
            location = hyper.get("base_model_location")
            evaluates = (
                "baseline"
                if not location
                else self.checkpoints.get(location) or ("rft" if "rft" in location.lower() else "sft")
            )
            return "evaluation", "eval", evaluates
        if "-RFT-" in tag or "reward_lambda_arn" in hyper or "rft" in name:
            return "training", "rft", None
        return "training", "sft", None

    def _injected_failure(self, job: SimJob) -> bool:
        fail_at = self.faults.fail_at
        if job.kind == "training":
            return fail_at == job.stage
        if fail_at != "eval":
            return False
        if self.faults.fail_eval_of == "final":
            tags = " ".join(str(t.get("Value", "")) for t in job.request.get("Tags", []))
            return "final" in job.name.lower() or "final" in tags.lower()
        return job.evaluates == self.faults.fail_eval_of

    def _settle(self, job: SimJob) -> None:
        """Finish the job if the caller's clock has passed its end."""
        with self._lock:
            if job.status != "InProgress" or clock.elapsed() < job.ends:
                if job.status == "InProgress":
                    job.secondary = "Training"
                return
            try:
                self._finish(job)
            except JobFailure as failure:
                job.status, job.secondary, job.failure_reason = "Failed", "Failed", str(failure)

    def _finish(self, job: SimJob) -> None:
        if self._injected_failure(job):
            raise JobFailure(
                "AlgorithmError: CUDA out of memory while "
                + ("evaluating" if job.kind == "evaluation" else "training")
                + " (failure injected by the rehearsal)"
            )
        hyper = job.request.get("HyperParameters", {})
        location = hyper.get("base_model_location")
        if location and location not in self.checkpoints:
            raise JobFailure(f"ClientError: base_model_location {location} is not a checkpoint of this account")
        members: dict[str, bytes] = {}
        if job.kind == "training":
            if job.stage == "rft":
                self._grade_rollouts(job, hyper.get("reward_lambda_arn"))
            job.checkpoint = f"s3://{self._escrow}/{job.name}/checkpoint/"
            self.checkpoints[job.checkpoint] = job.stage
            members["manifest.json"] = json.dumps({"checkpoint_s3_bucket": job.checkpoint}).encode()
            self._s3().put_object(Bucket=self._ensure_escrow(), Key=f"{job.name}/checkpoint/manifest.json", Body=b"{}")
        else:
            recipe = self._recipe(job)
            stamp = (self.epoch + dt.timedelta(seconds=job.ends)).strftime("%Y-%m-%dT%H-%M-%S.%f")
            if (recipe.get("evaluation") or {}).get("task") == "rft_eval":
                # AWS names an rft_eval job's grader only in its recipe, never in a hyperparameter
                grader = (recipe.get("rl_env") or {}).get("reward_lambda_arn")
                if not grader:
                    raise JobFailure("ClientError: rl_env.reward_lambda_arn is required for rft_eval")
                lines = self._score_rft_eval(job, grader)
                members[f"{job.name}/eval-result/rft_eval_results_{stamp}.jsonl"] = "".join(
                    json.dumps(line) + "\n" for line in lines
                ).encode()
            else:
                job.metrics = dict(self.faults.metrics[job.evaluates or "baseline"])
                members[f"{job.name}/eval-result/results_{stamp}.json"] = json.dumps(
                    {
                        "results": {"custom|gen_qa_gen_qa|0": job.metrics, "all": job.metrics},
                        "config_general": {"model_name": job.evaluates, "job_name": job.name},
                    },
                    indent=2,
                ).encode()
                members[f"{job.name}/eval-result/inference_output.jsonl"] = b""
        job.status, job.secondary = "Completed", "Completed"
        put_archive(self._s3(), job.output_uri, members)

    def _grade_rollouts(self, job: SimJob, lambda_arn: str | None) -> None:
        """Call the grader with rollouts of the job's dataset, as the RFT trainer does."""
        if not lambda_arn:
            raise JobFailure("ClientError: reward_lambda_arn is required for RFT")
        if self.invoke_lambda is None:
            return
        samples = self._dataset_samples(job)[:8]
        batch = [rollout(sample, index, correct=index % 3 != 2) for index, sample in enumerate(samples)]
        job.mean_reward = mean_reward(self._grade(job, lambda_arn, batch))

    def _score_rft_eval(self, job: SimJob, lambda_arn: str) -> list[dict]:
        """Per-sample results of an ``rft_eval`` job: every row of its dataset answered by the evaluated model
        and scored by the grader in batches, one ``{id, aggregate_reward_score, metrics_list}`` per row."""
        samples = self._dataset_samples(job)
        # The evaluated model answers a share of the rows correctly: its simulated exact match.
        quality = self.faults.metrics[job.evaluates or "baseline"].get("exact_match", 0.5)
        rollouts = [
            rollout(sample, index, correct=answers_correctly(index, quality)) for index, sample in enumerate(samples)
        ]
        if self.invoke_lambda is None:
            scored = [{"id": r["id"], "aggregate_reward_score": 0.0, "metrics_list": []} for r in rollouts]
        else:
            scored = []
            for start in range(0, len(rollouts), _EVAL_BATCH):
                scored.extend(self._grade(job, lambda_arn, rollouts[start : start + _EVAL_BATCH]))
        lines = [
            {
                "id": item["id"],
                "aggregate_reward_score": item["aggregate_reward_score"],
                "metrics_list": item.get("metrics_list", []),
            }
            for item in scored
        ]
        if not lines:
            raise JobFailure("ClientError: the evaluation channel holds no samples")
        job.mean_reward = mean_reward(lines)
        job.metrics = {"aggregate_reward_score": job.mean_reward}
        return lines

    def _grade(self, job: SimJob, lambda_arn: str, batch: list[dict]) -> list[dict]:
        """One grader call; a failed call or a response that breaks the reward contract fails the job."""
        assert self.invoke_lambda is not None
        answer = grade(self.invoke_lambda, lambda_arn, batch)
        job.grader_calls += 1
        return answer

    def _recipe(self, job: SimJob) -> dict:
        """The job's recipe: ``recipe.yaml`` in its ``recipe`` channel (empty when it has none)."""
        s3 = self._s3()
        for channel in job.request.get("InputDataConfig", []):
            if channel.get("ChannelName") != "recipe":
                continue
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            bucket, _, prefix = uri.removeprefix("s3://").partition("/")
            for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                if item["Key"].endswith(".yaml"):
                    loaded = yaml.safe_load(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                    return loaded if isinstance(loaded, dict) else {}
        return {}

    def _dataset_samples(self, job: SimJob) -> list[dict]:
        samples: list[dict] = []
        for channel in job.request.get("InputDataConfig", []):
            if channel.get("ChannelName") in ("train", "eval", "test"):
                samples.extend(read_rows(self._s3(), channel["DataSource"]["S3DataSource"]["S3Uri"]))
        return samples

    def _ensure_escrow(self) -> str:
        s3 = self._s3()
        try:
            s3.head_bucket(Bucket=self._escrow)
        except ClientError:
            s3.create_bucket(Bucket=self._escrow)
        return self._escrow


# Rows per grader call of a simulated rft_eval job.
_EVAL_BATCH = 8
