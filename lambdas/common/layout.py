"""Where things live in the project's buckets (keys only, no bucket names).

Artifacts bucket::

    runs/<run-id>/recipes/<stage>/recipe.yaml      rendered recipe of a job stage
    runs/<run-id>/inputs/<dataset>/<file>          the dataset versions pre-flight validated
    runs/<run-id>/jobs/<stage>/...                 job outputs
    runs/<run-id>/run.json, report.html            the run record and its report
    champions/<pipeline>.json                      the model a pipeline deployed last

Data bucket: datasets under ``datasets/`` (the trigger's request layout is ``lambdas/trigger/layout.py``).

Used by the stage functions, the notify function and the CDK constructs that grant access by prefix.
"""

from __future__ import annotations

RUNS_PREFIX = "runs/"
CHAMPIONS_PREFIX = "champions/"
DATASETS_PREFIX = "datasets/"
RUN_RECORD_NAME = "run.json"
REPORT_NAME = "report.html"


def run_prefix(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/"


def recipe_key(run_id: str, stage: str) -> str:
    return f"{run_prefix(run_id)}recipes/{stage}/recipe.yaml"


def job_output_prefix(run_id: str, stage: str) -> str:
    return f"{run_prefix(run_id)}jobs/{stage}"


def staged_dataset_key(run_id: str, dataset: str, filename: str) -> str:
    """Where pre-flight copies the validated version of a dataset: ``runs/<run>/inputs/<dataset>/<file>``."""
    return f"{run_prefix(run_id)}inputs/{dataset}/{filename}"


def staged_eval_key(run_id: str, filename: str) -> str:
    return staged_dataset_key(run_id, "eval", filename)


def run_record_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}{RUN_RECORD_NAME}"


def report_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}{REPORT_NAME}"


def champion_key(pipeline_name: str) -> str:
    return f"{CHAMPIONS_PREFIX}{pipeline_name}.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
