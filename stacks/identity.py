"""Identity: the SageMaker execution role for Nova jobs, the Bedrock import role and the Bedrock
customization role.

The import role may use the project key only through Bedrock in the stack's region
(``kms:ViaService``), to encrypt the imported model (docs/contracts/bedrock.md). The
customization role runs Bedrock model customization jobs (the ``bedrock`` platform,
docs/contracts/bedrock-customization.md#permissions): it reads the run's dataset copies,
writes job outputs, encrypts the custom model with the project key and is the identity
Bedrock RFT calls the graders with (stacks/graders.py grants that invoke).

Every role is trusted by one service, only on behalf of this account
(``aws:SourceAccount``); the customization role only for this account's customization
jobs (``aws:SourceArn``). Passing them is granted per caller with
``iam:PassedToService`` so no role can be handed to another service.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambdas.common import layout
from lambdas.pipeline.catalog import EVALUATION_REPOSITORY, FINE_TUNE_REPOSITORY, IMAGE_ACCOUNTS
from stacks.grants import (
    grant_key_use,
    grant_key_use_by_bedrock,
    grant_object_read,
    grant_object_write,
    model_customization_jobs,
)
from stacks.nag import acknowledge, arn_of

# Nova jobs write checkpoints to AWS-owned escrow buckets named after the account.
ESCROW_BUCKET_ARN = f"arn:aws:s3:::customer-escrow-{Aws.ACCOUNT_ID}-*"


# Where Bedrock customization jobs read and write in the artifacts bucket, relative to runs/ (lambdas/common/layout.py):
# the dataset copies preflight pinned (runs/<run>/inputs/<dataset>/<file>) and job outputs (runs/<run>/jobs/<stage>/).
STAGED_INPUTS = layout.staged_dataset_key("*", "*", "*").removeprefix(layout.RUNS_PREFIX)
JOB_OUTPUTS = f"{layout.job_output_prefix('*', '*').removeprefix(layout.RUNS_PREFIX)}/*"


def _service_principal(service: str, *, source_arn: str | None = None) -> iam.IPrincipal:
    conditions: dict[str, object] = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
    if source_arn is not None:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    return iam.ServicePrincipal(service).with_conditions(conditions)


class Identity(Construct):
    """Roles assumed by AWS services on the pipeline's behalf."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sagemaker_role = self._build_sagemaker_role(artifacts_bucket, key)
        self.bedrock_import_role = self._build_bedrock_import_role(key)
        self.bedrock_customization_role = self._build_bedrock_customization_role(artifacts_bucket, key)

    def _build_sagemaker_role(self, artifacts_bucket: s3.IBucket, key: kms.IKey) -> iam.Role:
        role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=_service_principal("sagemaker.amazonaws.com"),
            description="Runs Nova SFT, RFT and evaluation training jobs",
        )
        grant_object_read(role, artifacts_bucket, layout.RUNS_PREFIX)
        grant_object_write(role, artifacts_bucket, layout.RUNS_PREFIX)
        grant_key_use(role, key)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EscrowCheckpoints",
                actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=[ESCROW_BUCKET_ARN, f"{ESCROW_BUCKET_ARN}/*"],
            )
        )
        image_account = IMAGE_ACCOUNTS[Stack.of(self).region]
        repositories = [
            f"arn:aws:ecr:{Aws.REGION}:{image_account}:repository/{repo}"
            for repo in (FINE_TUNE_REPOSITORY, EVALUATION_REPOSITORY)
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullNovaImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=repositories,
            )
        )
        role.add_to_policy(iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        log_groups = f"arn:aws:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/TrainingJobs"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_groups, f"{log_groups}:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        acknowledge(
            role,
            "IAM5",
            "Object-key prefix of the project's artifacts bucket: jobs read the run's recipes and dataset "
            "copies and write outputs under keys chosen per run",
            f"Resource::{arn_of(artifacts_bucket)}/{layout.RUNS_PREFIX}*",
        )
        acknowledge(
            role,
            "IAM5",
            "Nova jobs write checkpoints to AWS-owned escrow buckets created per job and named "
            "customer-escrow-<account>-*; their exact names are only known after the job",
            "Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>-*",
            "Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>-*/*",
        )
        acknowledge(
            role,
            "IAM5",
            "Log streams of the SageMaker training-job log group are created per job",
            "Resource::arn:aws:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*",
        )
        acknowledge(
            role,
            "IAM5",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level permissions "
            "(PutMetricData is limited to SageMaker namespaces by condition)",
            "Resource::*",
        )
        return role

    def _build_bedrock_import_role(self, key: kms.IKey) -> iam.Role:
        role = iam.Role(
            self,
            "BedrockImportRole",
            assumed_by=_service_principal("bedrock.amazonaws.com"),
            description="Lets Bedrock read Nova checkpoints from the escrow buckets for CreateCustomModel",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadEscrowCheckpoints",
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[ESCROW_BUCKET_ARN, f"{ESCROW_BUCKET_ARN}/*"],
            )
        )
        acknowledge(
            role,
            "IAM5",
            "Escrow checkpoint buckets are created by AWS per training job as customer-escrow-<account>-*",
            "Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>-*",
            "Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>-*/*",
        )
        # CreateCustomModel's roleArn must be allowed to use the modelKmsKeyArn key (the API reference).
        grant_key_use_by_bedrock(role, key)
        return role

    def _build_bedrock_customization_role(self, artifacts_bucket: s3.IBucket, key: kms.IKey) -> iam.Role:
        role = iam.Role(
            self,
            "BedrockCustomizationRole",
            # The trust policy of the user guide's "Create a service role for model customization": this account's
            # customization jobs only (a confused-deputy guard beyond aws:SourceAccount).
            assumed_by=_service_principal("bedrock.amazonaws.com", source_arn=model_customization_jobs(Stack.of(self))),
            description="Runs Bedrock model customization jobs (SFT, RFT) of the bedrock platform",
        )
        # The job reads its training data and writes its outputs (metrics, manifest) under the run; the user guide's
        # example also lets it read the output location back.
        grant_object_read(role, artifacts_bucket, layout.RUNS_PREFIX, keys=STAGED_INPUTS)
        grant_object_read(role, artifacts_bucket, layout.RUNS_PREFIX, keys=JOB_OUTPUTS)
        grant_object_write(role, artifacts_bucket, layout.RUNS_PREFIX, keys=JOB_OUTPUTS)
        # The bucket is SSE-KMS with the project key; the custom model is encrypted with it too (CustomModelKmsKeyId),
        # which Bedrock does through grants it creates on the role's behalf ("Encryption of custom models").
        grant_key_use(role, key)
        grant_key_use_by_bedrock(role, key)
        acknowledge(
            role,
            "IAM5",
            "Object-key patterns of the project's artifacts bucket: a job reads the dataset copies of its run and "
            "writes under its run's job prefix, both keyed by run id",
            *(
                f"Resource::{arn_of(artifacts_bucket)}/{layout.RUNS_PREFIX}{keys}"
                for keys in (STAGED_INPUTS, JOB_OUTPUTS)
            ),
        )
        return role

    def grant_pass_sagemaker_role(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` hand the execution role to SageMaker (and nothing else)."""
        _grant_pass(grantee, self.sagemaker_role, "sagemaker.amazonaws.com")

    def grant_pass_bedrock_import_role(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` hand the import role to Bedrock (and nothing else)."""
        _grant_pass(grantee, self.bedrock_import_role, "bedrock.amazonaws.com")

    def grant_pass_bedrock_customization_role(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` hand the customization role to Bedrock (and nothing else)."""
        _grant_pass(grantee, self.bedrock_customization_role, "bedrock.amazonaws.com")


def _grant_pass(grantee: iam.IGrantable, role: iam.IRole, service: str) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["iam:PassRole"],
        resource_arns=[role.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": service}},
    )
