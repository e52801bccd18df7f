"""Names of the custom metrics the functions emit and the dashboard and alarms read.

One place for the Lambda code that emits them and for ``stacks/monitoring.py``. Every
metric lives in the :data:`NAMESPACE` namespace with a ``service`` dimension.
"""

from __future__ import annotations

NAMESPACE = "NovaCustomization"

# Emitted by the reward Lambdas (dimensions service=reward, grader=<preset>).
REWARD_SERVICE = "reward"
REWARD_MEAN = "RewardMean"
REWARD_MIN = "RewardMin"
REWARD_MAX = "RewardMax"
MALFORMED_ITEMS = "MalformedItems"
BATCH_SIZE = "BatchSize"
GRADER_ERRORS = "GraderErrors"
JUDGE_FAILURES = "JudgeFailures"
GRADING_DURATION = "GradingDuration"
UNRECOGNIZED_EVENTS = "UnrecognizedEvents"

# Emitted by the notify Lambda (dimension service=notify; STAGE_DURATION also has ``stage``).
NOTIFY_SERVICE = "notify"
RUNS_NOTIFIED = "runs_notified"
STAGE_DURATION = "stage_duration"
BEDROCK_IMPORT_FAILURES = "bedrock_import_failures"
BEDROCK_DEPLOYMENT_FAILURES = "bedrock_deployment_failures"
GATE_REJECTIONS = "gate_rejections"
RUNS_RECORDED_BY_NOTIFIER = "runs_recorded_by_notifier"

# Emitted by the trigger Lambda (dimension service=trigger): one count per message, named by its outcome.
TRIGGER_SERVICE = "trigger"
TRIGGER_STARTED = "trigger_started"
TRIGGER_DUPLICATE = "trigger_duplicate"
TRIGGER_REJECTED = "trigger_rejected"
TRIGGER_IGNORED = "trigger_ignored"
TRIGGER_WAITING = "trigger_waiting"
TRIGGER_UNRECOGNIZED = "trigger_unrecognized"
# The outcome of a handled message (``lambdas.trigger.service.Outcome.action``) -> its metric.
TRIGGER_OUTCOMES = {
    "started": TRIGGER_STARTED,
    "duplicate": TRIGGER_DUPLICATE,
    "rejected": TRIGGER_REJECTED,
    "ignored": TRIGGER_IGNORED,
}
# Every trigger metric, in the order the dashboard draws them, with its label.
TRIGGER_METRICS = (
    (TRIGGER_STARTED, "started"),
    (TRIGGER_DUPLICATE, "duplicate"),
    (TRIGGER_REJECTED, "rejected"),
    (TRIGGER_IGNORED, "ignored"),
    (TRIGGER_WAITING, "waiting"),
    (TRIGGER_UNRECOGNIZED, "unrecognized"),
)
