"""Names of the environment variables the functions read, defined once.

The CDK constructs (``stacks/*.py``) set them with these constants and the settings
models of the function families (:mod:`lambdas.pipeline.environment`,
:mod:`lambdas.notify.settings`, :mod:`lambdas.trigger.settings`) read them with the same
constants, so a name cannot drift between the two.
"""

from __future__ import annotations

PIPELINE_NAME = "PIPELINE_NAME"
DATA_BUCKET_NAME = "DATA_BUCKET_NAME"
ARTIFACTS_BUCKET_NAME = "ARTIFACTS_BUCKET_NAME"
BEDROCK_IMPORT_ROLE_ARN = "BEDROCK_IMPORT_ROLE_ARN"
MODEL_KMS_KEY_ARN = "MODEL_KMS_KEY_ARN"
GRADER_FUNCTIONS = "GRADER_FUNCTIONS"
MODEL_RETENTION = "MODEL_RETENTION"
TOPIC_ARN = "TOPIC_ARN"
STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
RUN_LOCK_TABLE_NAME = "RUN_LOCK_TABLE_NAME"
MAX_WAIT_SECONDS = "MAX_WAIT_SECONDS"
GRADER_SPEC = "GRADER_SPEC"
GRADER_PRESET = "GRADER_PRESET"
RUN_POLICY = "RUN_POLICY"
# Set by Lambda itself (``AWS_DEFAULT_REGION`` elsewhere).
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
