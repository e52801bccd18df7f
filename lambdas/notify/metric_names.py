"""Names of the custom metrics the dashboard and alarms read (namespace ``NovaCustomization``).

One place for the Lambda code that emits them and for stacks/monitoring.py.
"""

from __future__ import annotations

# Emitted by the notify Lambda (dimension service=notify; STAGE_DURATION also has ``stage``).
NOTIFY_SERVICE = "notify"
RUNS_NOTIFIED = "runs_notified"
STAGE_DURATION = "stage_duration"
BEDROCK_IMPORT_FAILURES = "bedrock_import_failures"
BEDROCK_DEPLOYMENT_FAILURES = "bedrock_deployment_failures"
GATE_REJECTIONS = "gate_rejections"
RUNS_RECORDED_BY_NOTIFIER = "runs_recorded_by_notifier"

# Emitted by the trigger Lambda (dimension service=trigger).
TRIGGER_SERVICE = "trigger"
TRIGGER_STARTED = "trigger_started"
TRIGGER_REJECTED = "trigger_rejected"
TRIGGER_WAITING = "trigger_waiting"
TRIGGER_DUPLICATE = "trigger_duplicate"
TRIGGER_UNRECOGNIZED = "trigger_unrecognized"
