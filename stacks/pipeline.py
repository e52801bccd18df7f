"""Pipeline: the customization state machine and its stage functions.

The workflow is described once in :mod:`stepfunctions.pipeline` (its functions, its
job loop, its phases) and generated into ``stepfunctions/pipeline.asl.json`` (JSONPath).
That file is deployed as it is (``DefinitionBody.from_file``, a file asset) with
``DefinitionSubstitutions`` (function ARNs, the SageMaker role, the Bedrock customization
role, the KMS key, the pipeline name), which the offline rehearsal maps to simulated
resources. CDK cannot infer permissions from an ASL file, so the state machine's grants are
derived here from the tasks of that same definition: each service integration it uses maps
to its IAM actions, and an integration without a mapping fails synthesis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Aws, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common import env_names, layout
from lambdas.pipeline import approval
from lambdas.pipeline.catalog import IMAGE_ACCOUNTS
from lambdas.pipeline.policy import RunPolicy
from lambdas.pipeline.serving import DEFAULT_RETENTION
from stacks.executions import acknowledge_training_jobs, training_jobs_arn
from stacks.grants import (
    CUSTOM_MODEL_DEPLOYMENTS,
    grant_key_use,
    grant_key_use_by_bedrock,
    grant_object_read,
    grant_object_write,
    model_customization_jobs,
)
from stacks.identity import JOB_OUTPUTS, Identity
from stacks.lambda_defaults import ProjectFunction
from stacks.nag import acknowledge, arn_of, rendered_arn
from stacks.run_lock import RunLock
from stepfunctions.asl import LAMBDA_INVOKE
from stepfunctions.pipeline import (
    BEDROCK_CUSTOMIZATION_JOB_SYNC,
    DEFINITION_FILE,
    DYNAMODB_PUT_ITEM,
    FUNCTIONS,
    HANDLERS_MODULE,
    LAMBDA_INVOKE_WAIT_FOR_TASK_TOKEN,
    SAGEMAKER_TRAINING_JOB_SYNC,
    task_integrations,
)

# Step Functions' managed rule that turns SageMaker job state changes into .sync callbacks.
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"

# Bedrock resources of this account in the stack's region. Custom models, their deployments and customization jobs
# get service-generated ids, so no name pattern can narrow them further (docs/contracts/bedrock-customization.md).
CUSTOM_MODELS = f"arn:aws:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:custom-model/*"
# The Nova base models a customization job starts from and an evaluation invokes, and the cross-region inference
# profiles (us., eu., apac., global.) through which Converse reaches them; a profile routes to the model in other
# regions (a global profile to the region-less model ARN), which the evaluation may invoke only through this account's
# Nova profiles (bedrock:InferenceProfileArn).
NOVA_FOUNDATION_MODELS = f"arn:aws:bedrock:{Aws.REGION}::foundation-model/amazon.nova-*"
NOVA_FOUNDATION_MODELS_ROUTED = (
    "arn:aws:bedrock:*::foundation-model/amazon.nova-*",
    "arn:aws:bedrock:::foundation-model/amazon.nova-*",
)
NOVA_INFERENCE_PROFILES = f"arn:aws:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/*amazon.nova-*"
# The Bedrock road's evaluation function (stepfunctions.pipeline.FUNCTIONS), granted once the catalogue defines it.
EVALUATE_ON_BEDROCK = "EvaluateOnBedrock"


class Pipeline(Construct):
    """The Standard workflow from datasets to a Bedrock on-demand deployment.

    ``functions`` maps each stage function's construct id (e.g. ``"PrepareJob"``)
    to its :class:`ProjectFunction`; ``definition_substitutions`` is exactly what
    the state machine resource receives; ``execution_log_group`` receives the
    execution history (level ALL, with execution data).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        identity: Identity,
        graders: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
        pipeline_name: str,
        region: str,
        run_lock: RunLock,
        run_policy: RunPolicy,
        reserved_concurrency: int = 0,
        model_retention: int = DEFAULT_RETENTION,
        approval_required: bool = False,
        approval_timeout_hours: int = 72,
    ) -> None:
        super().__init__(scope, construct_id)
        if region not in IMAGE_ACCOUNTS:
            raise ValueError(f"region {region!r} has no Nova customization images ({sorted(IMAGE_ACCOUNTS)})")
        self._data_bucket = data_bucket
        self._artifacts_bucket = artifacts_bucket
        self._key = key
        self._identity = identity
        self._graders = dict(graders)
        self._pipeline_name = pipeline_name
        self._run_lock = run_lock
        self._run_policy = run_policy
        # Which service integrations (and functions) the definition's tasks call: the state machine's grants.
        self._integrations = task_integrations(json.loads(DEFINITION_FILE.read_text()))

        environment = {
            env_names.PIPELINE_NAME: pipeline_name,
            env_names.DATA_BUCKET_NAME: data_bucket.bucket_name,
            env_names.ARTIFACTS_BUCKET_NAME: artifacts_bucket.bucket_name,
            env_names.BEDROCK_IMPORT_ROLE_ARN: identity.bedrock_import_role.role_arn,
            env_names.MODEL_KMS_KEY_ARN: key.key_arn,
            env_names.MODEL_RETENTION: str(model_retention),
            env_names.GRADER_FUNCTIONS: Stack.of(self).to_json_string(
                {name: fn.function_arn for name, fn in sorted(self._graders.items())}
            ),
            env_names.RUN_POLICY: run_policy.to_env(),
        }
        self.functions: dict[str, ProjectFunction] = {
            function.construct_id: ProjectFunction(
                self,
                function.construct_id,
                handler=f"{HANDLERS_MODULE}.{function.handler}",
                description=function.description,
                service_name="pipeline",
                log_retention=log_retention,
                environment=environment,
                timeout=Duration.seconds(function.timeout_seconds),
                # 0: no reservation (Lambda's 0 would throttle every call).
                reserved_concurrency=reserved_concurrency or None,
            )
            for function in FUNCTIONS
        }
        self._grant_stage_permissions()

        # The definition invokes each function's published version, not $LATEST: a deploy during a run
        # publishes new versions and a new definition, and the running execution keeps the code it started
        # with (CDK keeps the earlier versions: RemovalPolicy.RETAIN on current_version).
        self.versions: dict[str, lambda_.IVersion] = {
            cid: f.function.current_version for cid, f in self.functions.items()
        }
        self.definition_substitutions: dict[str, str] = {
            **{f"{cid}FunctionArn": version.function_arn for cid, version in self.versions.items()},
            "SageMakerRoleArn": identity.sagemaker_role.role_arn,
            "KmsKeyArn": key.key_arn,
            "PipelineName": pipeline_name,
            "RunLockTableName": run_lock.table.table_name,
            # Approval before deployment (context approval / approvalTimeoutHours, lambdas/pipeline/approval.py).
            "ApprovalMode": "required" if approval_required else "none",
            "ApprovalTimeoutSeconds": str(approval_timeout_hours * 3600),
        }
        if BEDROCK_CUSTOMIZATION_JOB_SYNC in self._integrations:
            # The role the definition's Bedrock customization jobs run as (RoleArn); only a definition that runs
            # such jobs gets it, so every substitution is one the definition uses.
            self.definition_substitutions["BedrockCustomizationRoleArn"] = identity.bedrock_customization_role.role_arn
        self.execution_log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            # The vendedlogs prefix keeps CloudWatch Logs' resource policy small for Step Functions.
            log_group_name=f"/aws/vendedlogs/states/{Names.unique_resource_name(self, max_length=200)}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = self._build_state_machine(self.execution_log_group)
        self.approval_function = self._build_approvals(environment, log_retention)

    # -- stage functions -------------------------------------------------------------------------

    def _role(self, construct_id: str) -> iam.IRole:
        return self.functions[construct_id].role

    def _grant_stage_permissions(self) -> None:
        data, artifacts = self._data_bucket, self._artifacts_bucket
        for function in self.functions.values():
            grant_key_use(function.role, self._key)

        # Validation checks that each dataset exists (HeadObject) and records its ETag, and reads the run record
        # (runs/<run-id>/run.json, nothing else of the run) that must hold a resumeFrom checkpoint.
        run_records = f"*/{layout.RUN_RECORD_NAME}"
        grant_object_read(self._role("ValidateRun"), data, layout.DATASETS_PREFIX)
        grant_object_read(self._role("ValidateRun"), artifacts, layout.RUNS_PREFIX, keys=run_records)
        self._acknowledge_prefixes(
            "ValidateRun",
            f"{arn_of(data)}/{layout.DATASETS_PREFIX}*",
            f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}{run_records}",
        )

        # Preflight streams datasets, stages the evaluation set under the run, and calls the graders.
        preflight = self._role("Preflight")
        grant_object_read(preflight, data, layout.DATASETS_PREFIX)
        grant_object_write(preflight, artifacts, layout.RUNS_PREFIX)
        self._grant_invoke_graders(preflight)
        self._acknowledge_prefixes(
            "Preflight", f"{arn_of(data)}/{layout.DATASETS_PREFIX}*", f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*"
        )
        # ... and reads the account's GPU instance quotas (lambdas/pipeline/quotas.py).
        iam.Grant.add_to_principal(
            grantee=preflight,
            actions=["servicequotas:ListServiceQuotas", "servicequotas:ListAWSDefaultServiceQuotas"],
            resource_arns=["*"],
        )
        acknowledge(
            preflight,
            "IAM5",
            "Listing Service Quotas values has no resource-level permission; the actions are read-only",
            "Resource::*",
        )

        # Job preparation writes recipes and stops a previous attempt that is still running.
        prepare = self._role("PrepareJob")
        grant_object_write(prepare, artifacts, layout.RUNS_PREFIX)
        iam.Grant.add_to_principal(
            grantee=prepare,
            actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
            resource_arns=[self._training_jobs_arn()],
        )
        self._acknowledge_prefixes("PrepareJob", f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*")
        self._acknowledge_training_jobs(self._role("PrepareJob"))
        # On the bedrock platform: the same for an earlier attempt's customization job; the checkpoint reader reads
        # the finished job (its custom model ARN, or why it failed).
        self._grant_customization_jobs(prepare, "bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob")
        self._grant_customization_jobs(self._role("ResolveCheckpoint"), "bedrock:GetModelCustomizationJob")

        # The readers of a finished job also read its billable time (DescribeTrainingJob).
        for reader in ("ResolveCheckpoint", "ReadEvaluation"):
            grant_object_read(self._role(reader), artifacts, layout.RUNS_PREFIX)
            self._acknowledge_prefixes(reader, f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*")
            iam.Grant.add_to_principal(
                grantee=self._role(reader),
                actions=["sagemaker:DescribeTrainingJob"],
                resource_arns=[self._training_jobs_arn()],
            )
            self._acknowledge_training_jobs(self._role(reader))

        # The gate compares with the champion; the deploy step moves the champion's deployment.
        for reader in ("ApplyGate", "DeployModel"):
            grant_object_read(self._role(reader), artifacts, layout.CHAMPIONS_PREFIX)
            self._acknowledge_prefixes(reader, f"{arn_of(artifacts)}/{layout.CHAMPIONS_PREFIX}*")

        for recorder in ("RecordRun", "RecordFailedRun"):
            grant_object_write(self._role(recorder), artifacts, layout.RUNS_PREFIX)
        grant_object_write(self._role("RecordRun"), artifacts, layout.CHAMPIONS_PREFIX)
        grant_object_read(self._role("RecordRun"), artifacts, layout.CHAMPIONS_PREFIX)
        self._acknowledge_prefixes(
            "RecordRun", f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*", f"{arn_of(artifacts)}/{layout.CHAMPIONS_PREFIX}*"
        )
        self._acknowledge_prefixes("RecordFailedRun", f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*")

        self._grant_bedrock()
        if EVALUATE_ON_BEDROCK in self.functions:
            self._grant_bedrock_evaluation(self._role(EVALUATE_ON_BEDROCK))

    def _grant_invoke_graders(self, grantee: iam.IGrantable) -> None:
        """Invoke the grader functions (their unqualified ARNs)."""
        if self._graders:
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["lambda:InvokeFunction"],
                resource_arns=[fn.function_arn for _, fn in sorted(self._graders.items())],
            )

    def _grant_customization_jobs(self, grantee: iam.IRole, *actions: str) -> None:
        """``actions`` on this account's Bedrock model customization jobs in the region."""
        jobs = model_customization_jobs(Stack.of(self))
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[jobs])
        acknowledge(
            grantee,
            "IAM5",
            "Bedrock customization jobs get service-generated ids when they are created; the pipeline acts only on "
            "the jobs its runs start",
            f"Resource::{rendered_arn(jobs)}",
        )

    def _acknowledge_bedrock(self, grantee: iam.IRole, reason: str, *arns: str) -> None:
        acknowledge(grantee, "IAM5", reason, *(f"Resource::{rendered_arn(arn)}" for arn in arns))

    def _grant_bedrock_evaluation(self, role: iam.IRole) -> None:
        """EvaluateOnBedrock: a provisional on-demand deployment of the candidate, Converse on it or on the base model
        (its inference profile), the grader for rft_eval, the staged evaluation data and the attempt's outputs."""
        iam.Grant.add_to_principal(
            grantee=role,
            actions=[
                "bedrock:CreateCustomModelDeployment",
                "bedrock:GetCustomModelDeployment",
                "bedrock:DeleteCustomModelDeployment",
                "bedrock:TagResource",
            ],
            resource_arns=[CUSTOM_MODELS, CUSTOM_MODEL_DEPLOYMENTS],
        )
        # Converse is authorized as bedrock:InvokeModel ("Prerequisites for running model inference").
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["bedrock:InvokeModel"],
            resource_arns=[NOVA_FOUNDATION_MODELS, NOVA_INFERENCE_PROFILES, CUSTOM_MODEL_DEPLOYMENTS],
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["bedrock:InvokeModel"],
                resources=list(NOVA_FOUNDATION_MODELS_ROUTED),
                conditions={"StringLike": {"bedrock:InferenceProfileArn": NOVA_INFERENCE_PROFILES}},
            )
        )
        self._acknowledge_bedrock(
            role,
            "Provisional deployments get service-generated ids; Converse reaches the Nova base models directly, "
            "through this account's Nova inference profiles, or in the regions those profiles route to",
            CUSTOM_MODELS,
            CUSTOM_MODEL_DEPLOYMENTS,
            NOVA_FOUNDATION_MODELS,
            NOVA_INFERENCE_PROFILES,
            *NOVA_FOUNDATION_MODELS_ROUTED,
        )
        self._grant_invoke_graders(role)
        grant_object_read(role, self._artifacts_bucket, layout.RUNS_PREFIX)
        grant_object_write(role, self._artifacts_bucket, layout.RUNS_PREFIX, keys=JOB_OUTPUTS)
        self._acknowledge_prefixes(
            EVALUATE_ON_BEDROCK,
            f"{arn_of(self._artifacts_bucket)}/{layout.RUNS_PREFIX}*",
            f"{arn_of(self._artifacts_bucket)}/{layout.RUNS_PREFIX}{JOB_OUTPUTS}",
        )

    def _grant_bedrock(self) -> None:
        models, deployments = CUSTOM_MODELS, CUSTOM_MODEL_DEPLOYMENTS
        # On a name conflict the create functions read the existing resource (and the model's tags) to reuse it
        # only when it is this run's (lambdas/pipeline/bedrock.py).
        grants = {
            "ImportModel": (
                [
                    "bedrock:CreateCustomModel",
                    "bedrock:TagResource",
                    "bedrock:GetCustomModel",
                    "bedrock:ListTagsForResource",
                ],
                [models],
            ),
            "CheckModelImport": (["bedrock:GetCustomModel"], [models]),
            # The import runs beside the final evaluation: a model the run then does not deploy is deleted. On the
            # bedrock platform the custom model is kept (it is the job's output) and its provisional deployment deleted.
            "DeleteModel": (
                [
                    "bedrock:DeleteCustomModel",
                    "bedrock:GetCustomModelDeployment",
                    "bedrock:DeleteCustomModelDeployment",
                ],
                [models, deployments],
            ),
            # The first run creates the pipeline's deployment (on the bedrock platform: adopts the evaluation's
            # provisional one), later runs move it to their model (lambdas/pipeline/serving.py) and, on the bedrock
            # platform, delete the provisional deployment the move made redundant.
            "DeployModel": (
                [
                    "bedrock:CreateCustomModelDeployment",
                    "bedrock:UpdateCustomModelDeployment",
                    "bedrock:TagResource",
                    "bedrock:GetCustomModelDeployment",
                    "bedrock:DeleteCustomModelDeployment",
                ],
                [models, deployments],
            ),
            "CheckDeployment": (["bedrock:GetCustomModelDeployment"], [deployments]),
            # After a deployment, the record deletes the replaced deployment and models beyond the retention; both
            # records delete a provisional deployment of the run that is not serving.
            "RecordRun": (
                [
                    "bedrock:DeleteCustomModel",
                    "bedrock:GetCustomModelDeployment",
                    "bedrock:DeleteCustomModelDeployment",
                ],
                [models, deployments],
            ),
            "RecordFailedRun": (
                ["bedrock:GetCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"],
                [deployments],
            ),
        }
        for construct_id, (actions, resources) in grants.items():
            role = self._role(construct_id)
            iam.Grant.add_to_principal(grantee=role, actions=actions, resource_arns=resources)
            self._acknowledge_bedrock(
                role,
                "Custom models and their deployments get ARNs with service-generated ids when they are created; the "
                "functions act only on the ones this run creates or adopts",
                *resources,
            )
        self._identity.grant_pass_bedrock_import_role(self._role("ImportModel"))
        # CreateCustomModel with modelKmsKeyArn: Bedrock uses the key on the caller's behalf (the user guide's
        # "model import API invocation role"), only through Bedrock in this region.
        grant_key_use_by_bedrock(self._role("ImportModel"), self._key)

    def _acknowledge_prefixes(self, construct_id: str, *object_patterns: str) -> None:
        acknowledge(
            self._role(construct_id),
            "IAM5",
            "Object-key prefixes of the project's own buckets: run outputs and records are keyed by run id",
            *(f"Resource::{p}" for p in object_patterns),
        )

    def _training_jobs_arn(self) -> str:
        return training_jobs_arn(self._pipeline_name)

    def _acknowledge_training_jobs(self, role: iam.IRole) -> None:
        acknowledge_training_jobs(role, self._pipeline_name)

    # -- approvals -------------------------------------------------------------------------------

    def _build_approvals(self, environment: dict[str, str], log_retention: logs.RetentionDays) -> ProjectFunction:
        """The decision function: an ``approvals/<run-id>.json`` upload to the data bucket (EventBridge) ->
        ``SendTaskSuccess`` with the token "Wait for approval" stored under ``runs/<run-id>/``."""
        function = ProjectFunction(
            self,
            "ApplyApproval",
            handler=f"{HANDLERS_MODULE}.apply_approval",
            description="Nova pipeline: apply an approval decision (approvals/<run-id>.json)",
            service_name="pipeline",
            log_retention=log_retention,
            environment=environment,
            timeout=Duration.seconds(60),
        )
        role, data, artifacts = function.role, self._data_bucket, self._artifacts_bucket
        grant_key_use(role, self._key)
        grant_object_read(role, data, approval.APPROVALS_PREFIX)
        grant_object_write(role, data, approval.APPROVALS_PREFIX)
        tokens = f"*/{approval.TOKEN_NAME}"
        grant_object_read(role, artifacts, layout.RUNS_PREFIX, keys=tokens)
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["s3:DeleteObject"],
            resource_arns=[artifacts.arn_for_objects(f"{layout.RUNS_PREFIX}{tokens}")],
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=["states:SendTaskSuccess"], resource_arns=[self.state_machine.state_machine_arn]
        )
        acknowledge(
            role,
            "IAM5",
            "Object-key prefixes of the project's own buckets: decisions and approval tokens are keyed by run id",
            f"Resource::{arn_of(data)}/{approval.APPROVALS_PREFIX}*",
            f"Resource::{arn_of(artifacts)}/{layout.RUNS_PREFIX}{tokens}",
        )
        requester = self._role("RequestApproval")
        grant_object_write(requester, artifacts, layout.RUNS_PREFIX)
        self._acknowledge_prefixes("RequestApproval", f"{arn_of(artifacts)}/{layout.RUNS_PREFIX}*")
        rule = events.Rule(
            self,
            "ApprovalUploaded",
            description=f"Approval decisions (approvals/<run-id>.json) of pipeline {self._pipeline_name}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data.bucket_name]},
                    "object": {"key": events.Match.prefix(approval.APPROVALS_PREFIX)},
                },
            ),
        )
        rule.add_target(targets.LambdaFunction(function.function, retry_attempts=2))
        return function

    def connect_topic(self, topic: sns.ITopic) -> None:
        """Approval requests and decisions are published on the run topic."""
        for function in (self.functions["RequestApproval"], self.approval_function):
            function.function.add_environment(env_names.TOPIC_ARN, topic.topic_arn)
            iam.Grant.add_to_principal(grantee=function.role, actions=["sns:Publish"], resource_arns=[topic.topic_arn])

    # -- state machine ---------------------------------------------------------------------------

    def _build_state_machine(self, log_group: logs.ILogGroup) -> sfn.StateMachine:
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_file(str(DEFINITION_FILE)),
            definition_substitutions=self.definition_substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        self._grant_state_machine(state_machine.role)
        return state_machine

    def _grant_state_machine(self, role: iam.IRole) -> None:
        """What the definition's tasks call, and nothing else."""
        integrations = self._integrations
        lambda_integrations = (LAMBDA_INVOKE, LAMBDA_INVOKE_WAIT_FOR_TASK_TOKEN)
        known = {*lambda_integrations, SAGEMAKER_TRAINING_JOB_SYNC, BEDROCK_CUSTOMIZATION_JOB_SYNC, DYNAMODB_PUT_ITEM}
        unknown = sorted(set(integrations) - known)
        if unknown:
            raise ValueError(f"{DEFINITION_FILE.name} calls {unknown}: grant them in {__name__}")
        # A .waitForTaskToken invoke is an ordinary InvokeFunction; the token comes back through SendTaskSuccess.
        invoked = set().union(*(integrations.get(resource, set()) for resource in lambda_integrations))
        missing = sorted(invoked - set(self.functions))
        if missing:
            raise ValueError(f"{DEFINITION_FILE.name} invokes functions that are not defined: {missing}")
        if invoked:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=["lambda:InvokeFunction"],
                resource_arns=[self.versions[cid].function_arn for cid in sorted(invoked)],
            )
        if SAGEMAKER_TRAINING_JOB_SYNC in integrations:
            self._grant_training_jobs_sync(role)
        if BEDROCK_CUSTOMIZATION_JOB_SYNC in integrations:
            self._grant_customization_jobs_sync(role)
        if DYNAMODB_PUT_ITEM in integrations:
            self._run_lock.grant_take(role)
        acknowledge(
            role,
            "IAM5",
            "Execution logging (CloudWatch Logs delivery) and X-Ray tracing actions have no resource-level permissions",
            "Resource::*",
        )

    def _grant_training_jobs_sync(self, role: iam.IRole) -> None:
        """createTrainingJob.sync: create, watch and stop the pipeline's jobs through Step Functions' rule.

        CreateTrainingJob is allowed only on the run policy's instance types (``sagemaker:InstanceTypes``,
        a multivalued key: every instance type of the request must be allowed)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob"],
                resources=[self._training_jobs_arn()],
                conditions={
                    "ForAllValues:StringEquals": {
                        "sagemaker:InstanceTypes": list(self._run_policy.allowedInstanceTypes)
                    }
                },
            )
        )
        iam.Grant.add_to_principal(
            grantee=role,
            actions=[
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
            ],
            resource_arns=[self._training_jobs_arn()],
        )
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resource_arns=[f"arn:aws:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{SAGEMAKER_SYNC_RULE}"],
        )
        self._identity.grant_pass_sagemaker_role(role)
        self._acknowledge_training_jobs(role)

    def _grant_customization_jobs_sync(self, role: iam.IRole) -> None:
        """createModelCustomizationJob.sync: create the jobs (from a Nova base model or the run's SFT custom model),
        tag them and their custom models, and watch and stop them: the policy Step Functions documents for this
        integration, which needs no EventBridge rule (docs/contracts/bedrock-customization.md#permissions). The job
        runs as the customization role, the only role this integration may pass, and encrypts its custom model with
        the project key on the caller's behalf (CustomModelKmsKeyId), only through Bedrock in this region."""
        jobs = model_customization_jobs(Stack.of(self))
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["bedrock:CreateModelCustomizationJob"],
            resource_arns=[NOVA_FOUNDATION_MODELS, CUSTOM_MODELS, jobs],
        )
        iam.Grant.add_to_principal(grantee=role, actions=["bedrock:TagResource"], resource_arns=[CUSTOM_MODELS, jobs])
        self._grant_customization_jobs(role, "bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob")
        self._acknowledge_bedrock(
            role,
            "A customization job starts from a Nova base model or from a custom model the run made, and creates a job "
            "and a custom model whose ids Bedrock generates",
            NOVA_FOUNDATION_MODELS,
            CUSTOM_MODELS,
        )
        self._identity.grant_pass_bedrock_customization_role(role)
        grant_key_use_by_bedrock(role, self._key)
