"""How long a Nova job should take: the model behind the default runtime, the runtime warning and the cost.

A job's duration is a fixed setup (provisioning the instances, pulling the image, loading the model,
writing the checkpoint) plus its work, shared by its instances (data parallel: the global batch is split
across them):

* SFT: ``steps x global_batch_size`` samples. Nova 2 counts ``max_steps``; Nova 1 counts epochs, so
  its steps are ``max_epochs x ceil(rows / global_batch_size)`` and need the dataset's row count.
* RFT: ``max_steps x global_batch_size x number_generation`` rollouts (each generated, graded by the
  reward Lambda and learned from).
* Evaluation: one generation per dataset row.

AWS publishes no per-step throughput for Nova jobs, so the seconds per sample below are the project's
assumptions, chosen on the slow side; a run's real pace is ``TrainingTimeInSeconds`` of
``DescribeTrainingJob``, and these figures are the place to calibrate. The estimate only ever raises
a default runtime (``RUNTIME_MARGIN`` times the estimate when that exceeds the recipe's default) and
warns when a job's runtime is shorter than its estimate; it never shortens a runtime.

Pure module: no AWS calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lambdas.pipeline.recipes import RecipeTemplate

SETUP_HOURS = {"sft": 0.5, "rft": 0.5, "eval": 0.25}
SECONDS_PER_SAMPLE = {"sft": 1.0, "rft": 4.0, "eval": 1.0}
RUNTIME_MARGIN = 1.5


@dataclass(frozen=True)
class Estimate:
    """The estimated duration of one job and what it was computed from."""

    hours: float
    basis: str

    def suggested_runtime_hours(self) -> float:
        """A runtime with the margin, in whole quarter hours."""
        return math.ceil(self.hours * RUNTIME_MARGIN * 4) / 4


def _value(template: RecipeTemplate, overrides: dict[str, Any], key: str) -> Any:
    return overrides[key] if key in overrides else template.default(key)


def job_hours(
    template: RecipeTemplate, overrides: dict[str, Any], instance_count: int, rows: int | None = None
) -> Estimate | None:
    """The estimated hours of one job, or None when it depends on a row count not given."""
    method = template.method
    per_sample = SECONDS_PER_SAMPLE[method]
    if method == "eval":
        if rows is None:
            return None
        samples, basis = rows, f"{rows} rows"
    else:
        batch = int(_value(template, overrides, "global_batch_size"))
        if "max_steps" in template.overrides:
            steps = int(_value(template, overrides, "max_steps"))
            basis = f"{steps} steps of {batch}"
        else:
            if rows is None:
                return None
            epochs = int(_value(template, overrides, "max_epochs"))
            steps = epochs * math.ceil(rows / batch)
            basis = f"{epochs} epochs of {rows} rows = {steps} steps of {batch}"
        samples = steps * batch
        if method == "rft":
            generations = int(_value(template, overrides, "number_generation"))
            samples *= generations
            basis += f" x {generations} rollouts"
    work = samples * per_sample / instance_count / 3600
    hours = SETUP_HOURS[method] + work
    return Estimate(
        hours=hours,
        basis=f"{basis} at {per_sample:g} s per sample on {instance_count} instance(s) "
        f"+ {SETUP_HOURS[method]:g} h setup",
    )


def default_runtime_hours(template: RecipeTemplate, overrides: dict[str, Any], instance_count: int) -> float:
    """The runtime of a job whose run sets no ``maxRuntimeHours``: the recipe's, or more when the job needs it."""
    estimate = job_hours(template, overrides, instance_count)
    if estimate is None:
        return template.max_runtime_hours
    return max(template.max_runtime_hours, estimate.suggested_runtime_hours())
