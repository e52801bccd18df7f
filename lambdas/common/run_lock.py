"""The run lock: one item per pipeline in a DynamoDB table, held by the execution that runs.

The state machine takes the lock in its first state with a conditional ``PutItem``
(the item must be absent or already held by the same execution), so two executions
of one pipeline can never both pass it, however they were started (trigger,
console, API). The lock is released when the execution ends, whatever the end
(succeeded, failed, timed out, aborted): the notify function receives every end
and deletes the item only if that execution still holds it. The trigger reads
the lock with a strongly consistent read before it starts anything, and clears a
lock whose execution is no longer running (its release was lost).

Clients are parameters; nothing here creates an AWS client.
"""

from __future__ import annotations

from typing import Any

from lambdas.common.aws_errors import error_code

# Item attributes, shared with the state machine's "Take run lock" state (stepfunctions/pipeline.py).
KEY_ATTRIBUTE = "pipeline"
HOLDER_ATTRIBUTE = "executionArn"
TAKEN_AT_ATTRIBUTE = "takenAt"
# The condition under which an execution may take (or take again, when a step is retried) the lock.
TAKE_CONDITION = f"attribute_not_exists({KEY_ATTRIBUTE}) OR {HOLDER_ATTRIBUTE} = :me"
# The error a refused conditional write raises, as the DynamoDB API and the Step Functions integration name it.
CONDITION_FAILED = "ConditionalCheckFailedException"
# The Fail state's error when another execution holds the lock.
LOCK_HELD_ERROR = "RunLockHeld"


def lock_holder(dynamodb: Any, table: str, pipeline: str) -> str | None:
    """The execution ARN holding the pipeline's lock (strongly consistent read), ``None`` when free."""
    item = dynamodb.get_item(TableName=table, Key={KEY_ATTRIBUTE: {"S": pipeline}}, ConsistentRead=True).get("Item")
    if not item:
        return None
    holder = item.get(HOLDER_ATTRIBUTE, {}).get("S")
    return str(holder) if holder else None


def release(dynamodb: Any, table: str, pipeline: str, execution_arn: str) -> bool:
    """Delete the lock if ``execution_arn`` holds it; ``True`` when it was released by this call."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={KEY_ATTRIBUTE: {"S": pipeline}},
            ConditionExpression=f"{HOLDER_ATTRIBUTE} = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if error_code(error) == CONDITION_FAILED:
            return False  # free, or held by another execution: not ours to release
        raise
    return True
