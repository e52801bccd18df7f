"""Event-triggered retraining: S3 requests, dataset ``_READY`` markers and schedules -> exactly one execution."""
