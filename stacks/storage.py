"""Storage: the encryption key, the data and artifacts buckets, and their access-log bucket.

- data bucket: datasets (``datasets/``) and run requests (``requests/``);
- artifacts bucket: rendered recipes, job outputs, run records and reports (``runs/``),
  champion records (``champions/``);
- log bucket: S3 server access logs of the two above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambdas.trigger.layout import REQUESTS_ROOT
from stacks.config import WRITER_AREAS
from stacks.nag import acknowledge


class Storage(Construct):
    """Encrypted, versioned, TLS-only buckets with access logging and lifecycle rules."""

    def __init__(self, scope: Construct, construct_id: str, *, retain_data: bool) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the Nova customization pipeline's datasets, artifacts and messages",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.log_bucket = self._build_log_bucket()
        data_policy = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.data_bucket = self._build_bucket("DataBucket", prefix="data/", removal_policy=data_policy)
        # Artifacts are reproducible from the data, but run records are the lineage: keep them too.
        self.artifacts_bucket = self._build_bucket("ArtifactsBucket", prefix="artifacts/", removal_policy=data_policy)
        self._deny_foreign_request_encryption()

    def _deny_foreign_request_encryption(self) -> None:
        """Requests must be readable by the trigger: no SSE-C, and no KMS key but the project's (by ARN).

        An upload without encryption headers gets the bucket's default (the project key)."""
        requests = self.data_bucket.arn_for_objects(f"{REQUESTS_ROOT}*")
        denials = {
            "DenyRequestsWithCustomerKeys": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
            "DenyRequestsWithForeignKmsKeys": {
                "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": self.key.key_arn}
            },
        }
        for sid, conditions in denials.items():
            self.data_bucket.add_to_resource_policy(_deny_put(sid, requests, conditions))

    def restrict_writers(self, writers: Mapping[str, Sequence[str]], *, project_roles: Sequence[iam.IRole]) -> None:
        """Deny ``s3:PutObject`` in each area of ``writers`` to every principal but the ones listed (and the
        project's own ``project_roles`` that write there, e.g. the trigger moving rejected requests); an
        area left out is left to the account's IAM policies."""
        for area, principals in writers.items():
            allowed = list(principals) + [role.role_arn for role in project_roles]
            if area == "requests":  # requests/ holds the templates too: their writers may write there
                allowed += list(writers.get("templates", ()))
            where = self.data_bucket.arn_for_objects(WRITER_AREAS[area])
            self.data_bucket.add_to_resource_policy(
                _deny_put(f"Only{area.capitalize()}WritersPut", where, {"ArnNotLike": {"aws:PrincipalArn": allowed}})
            )

    def _build_log_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access logging only delivers to SSE-S3 buckets, not SSE-KMS.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
        )
        no_self_logging = "This is the access-log target bucket; logging it into itself would loop"
        acknowledge(bucket, "S1", no_self_logging)
        _cfn_bucket(bucket).add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_self_logging}]})
        return bucket

    def _build_bucket(self, construct_id: str, *, prefix: str, removal_policy: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix=prefix,
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=Duration.days(90),
                    noncurrent_versions_to_retain=3,
                ),
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
        )
        # Object-created events go to EventBridge (retraining triggers) without CDK's
        # notifications custom resource, which would add a Lambda with a managed policy.
        _cfn_bucket(bucket).add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        return bucket


def _deny_put(sid: str, objects: str, conditions: Mapping[str, Mapping[str, object]]) -> iam.PolicyStatement:
    """A bucket-policy statement denying ``s3:PutObject`` on ``objects`` to anyone when ``conditions`` hold."""
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject"],
        resources=[objects],
        conditions=dict(conditions),
    )


def _cfn_bucket(bucket: s3.Bucket) -> s3.CfnBucket:
    """The ``AWS::S3::Bucket`` resource behind ``bucket``, for metadata and property overrides."""
    resource = bucket.node.default_child
    if not isinstance(resource, s3.CfnBucket):
        raise TypeError(f"{bucket.node.path} has no CfnBucket as its default child")
    return resource
