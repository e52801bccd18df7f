"""From the synthesized template (:mod:`offline.synth`) to simulated resources and the rendered definition.

:class:`SimulatedStack` provisions, in moto, what the state machine reaches:
buckets, roles, Lambda functions (registered with the in-process runtime, same
``Handler`` and ``Environment``), SNS topics (each with a capture queue, so sent
notifications can be read back) and queues; KMS keys get stable fake ARNs. A
small resolver evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::Select``, ``Fn::Split`` and the pseudo parameters against those resources.

The definition is rendered as CloudFormation renders ``DefinitionSubstitutions``
(:func:`offline.asl.render_definition`, each ``${key}`` replaced by the resolved
value), proven to differ from the synthesized one only in its placeholders, and
its Task parameter names checked against botocore's input shapes, as
``CreateStateMachine`` checks them (:func:`offline.shapes.definition_problems`).
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from offline import ACCOUNT, pseudo_parameters
from offline.asl import RenderError, assert_only_placeholders_differ, render_definition
from offline.shapes import definition_problems
from offline.synth import STACK_NAME, Synthesized
from rehearsal.simulators.functions import FunctionRuntime

_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")


class TemplateError(RuntimeError):
    """The template cannot be rehearsed (no state machine, an unsupported intrinsic, a bad definition)."""


def friendly_name(logical_id: str) -> str:
    """A logical ID without CDK's hash suffix.

    ``SageMakerGradersLabelFunction1A2B3C4D`` -> ``SageMakerGradersLabelFunction``.
    """
    return _HASH_SUFFIX.sub("", logical_id) or logical_id


@dataclass
class SimulatedStack:
    """The template's resources as moto resources, and the state machine ready to run."""

    synthesized: Synthesized
    runtime: FunctionRuntime
    region: str = "us-east-1"
    account: str = ACCOUNT
    physical: dict[str, str] = field(default_factory=dict)  # logical ID -> Ref value
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    topic_queues: dict[str, str] = field(default_factory=dict)  # topic ARN -> capture queue URL
    state_machine_logical_id: str = ""
    definition_template: str = ""
    substitutions: dict[str, str] = field(default_factory=dict)
    definition: str = ""
    state_machine_arn: str = ""

    @property
    def resources(self) -> dict[str, dict]:
        return self.synthesized.template_json["Resources"]

    def of_type(self, resource_type: str) -> list[str]:
        return [lid for lid, r in self.resources.items() if r["Type"] == resource_type]

    def bucket(self, hint: str) -> str:
        """The simulated name of the bucket whose logical ID contains ``hint`` (``DataBucket``)."""
        for logical_id in self.of_type("AWS::S3::Bucket"):
            if hint in logical_id and "Log" not in logical_id.replace(hint, ""):
                return self.ref(logical_id)
        raise TemplateError(f"no bucket like {hint!r} in the template")

    def functions(self) -> dict[str, str]:
        """Friendly name -> ARN of every provisioned function."""
        return {
            friendly_name(lid): self.attributes[(lid, "Arn")]
            for lid in self.of_type("AWS::Lambda::Function")
            if (lid, "Arn") in self.attributes
        }

    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    # -- provisioning ------------------------------------------------------------------

    def provision(self) -> SimulatedStack:
        """Create the resources the state machine reaches and the state machine itself."""
        machines = self.of_type("AWS::StepFunctions::StateMachine")
        if len(machines) != 1:
            raise TemplateError(f"expected one AWS::StepFunctions::StateMachine, found {len(machines)}")
        self.state_machine_logical_id = machines[0]
        for logical_id in self.of_type("AWS::S3::Bucket") + self.of_type("AWS::SNS::Topic"):
            self.ref(logical_id)
        props = self.resources[self.state_machine_logical_id]["Properties"]
        self.definition_template = self._definition_template(props)
        self.substitutions = {k: _as_text(self.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()}
        try:
            self.definition = render_definition(self.definition_template, self.substitutions)
            assert_only_placeholders_differ(self.definition_template, self.definition, self.substitutions)
        except RenderError as error:
            raise TemplateError(str(error)) from error
        if re.search(r'"QueryLanguage"\s*:\s*"JSONata"', self.definition):
            raise TemplateError("the definition uses JSONata, which moto's interpreter cannot evaluate offline")
        problems = definition_problems(self.definition, names_only=True)
        if problems:
            raise TemplateError("definition rejected: " + "; ".join(problems))
        role_arn = self.resolve(props["RoleArn"])
        sfn = self.client("stepfunctions")
        self.state_machine_arn = sfn.create_state_machine(
            name=_machine_name(friendly_name(self.state_machine_logical_id)),
            definition=self.definition,
            roleArn=role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        return self

    def _definition_template(self, props: dict) -> str:
        if "DefinitionString" in props:
            return _as_text(self.resolve(props["DefinitionString"]))
        if "DefinitionS3Location" in props:
            return self.synthesized.definition(self.state_machine_logical_id)
        if "Definition" in props:
            return json.dumps(props["Definition"])
        raise TemplateError("the state machine has no definition")

    # -- resolver ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(_as_text(self.resolve(p)) for p in self.resolve(parts))
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            variables = {k: _as_text(self.resolve(v)) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_variable(m.group(1), variables), text)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::Split":
            separator, text = argument
            return _as_text(self.resolve(text)).split(separator)
        raise TemplateError(f"the rehearsal does not resolve {function}")

    def _sub_variable(self, name: str, variables: dict[str, str]) -> str:
        if name in variables:
            return variables[name]
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return _as_text(self.get_att(logical_id, attribute))
        return _as_text(self.ref(name))

    def ref(self, logical_id: str) -> str:
        pseudo = {
            **pseudo_parameters(self.account, self.region),
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{STACK_NAME}/rehearsal",
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id not in self.physical:
            self._create(logical_id)
        return self.physical[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> str:
        self.ref(logical_id)
        if (logical_id, attribute) not in self.attributes:
            kind = self.resources[logical_id]["Type"].split("::")[1].lower()
            self.attributes[(logical_id, attribute)] = (
                f"arn:aws:{kind}:{self.region}:{self.account}:{friendly_name(logical_id)}"
                if attribute == "Arn"
                else f"{friendly_name(logical_id)}-{attribute}"
            )
        return self.attributes[(logical_id, attribute)]

    def _create(self, logical_id: str) -> None:
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to unknown resource {logical_id}")
        resource = self.resources[logical_id]
        kind = resource["Type"]
        props = resource.get("Properties", {})
        name = friendly_name(logical_id)
        creator = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::Version": self._version,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::KMS::Key": self._key,
            "AWS::DynamoDB::Table": self._table,
            "AWS::StepFunctions::StateMachine": self._state_machine_ref,
        }.get(kind)
        if creator is None:  # not simulated: a stable fake identifier is enough for a substitution
            service = kind.split("::")[1].lower()
            self.physical[logical_id] = (
                f"arn:aws:{service}:{self.region}:{self.account}:{name}"
                if kind.endswith(("LayerVersion", "Rule", "Schedule"))
                else f"{STACK_NAME}-{name}"
            )
            return
        creator(logical_id, name, props)

    def _bucket(self, logical_id: str, name: str, props: dict) -> None:
        bucket = re.sub(r"[^a-z0-9-]", "", f"{STACK_NAME}-{name}".lower())[:50] + "-sim"
        self.client("s3").create_bucket(Bucket=bucket)
        self.physical[logical_id] = bucket
        self.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{bucket}"

    def _role(self, logical_id: str, name: str, props: dict) -> None:
        document = self.resolve(props.get("AssumeRolePolicyDocument", {}))
        role_name = name[:64]
        arn = self.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(document))["Role"][
            "Arn"
        ]
        self.physical[logical_id] = role_name
        self.attributes[(logical_id, "Arn")] = arn

    def _function(self, logical_id: str, name: str, props: dict) -> None:
        function_name = f"{STACK_NAME}-{name}"[:64]
        role = self.resolve(props["Role"])
        environment = {
            k: _as_text(v) for k, v in self.resolve(props.get("Environment", {}).get("Variables", {})).items()
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("README.txt", "code runs in-process from the repository (rehearsal)")
        arn = self.client("lambda").create_function(
            FunctionName=function_name,
            Runtime=props.get("Runtime", "python3.12"),
            Role=role,
            Handler=props["Handler"],
            Code={"ZipFile": buffer.getvalue()},
            Environment={"Variables": environment},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
        )["FunctionArn"]
        self.physical[logical_id] = function_name
        self.attributes[(logical_id, "Arn")] = arn
        self.runtime.register(
            arn=arn,
            name=function_name,
            handler=props["Handler"],
            environment=environment,
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            label=name,
        )

    def _version(self, logical_id: str, name: str, props: dict) -> None:
        """A published version: its ARN is the function's, qualified; it runs the same handler."""
        function_name = _as_text(self.resolve(props["FunctionName"]))
        unqualified = next(arn for arn, spec in self.runtime.functions.items() if spec["name"] == function_name)
        published = self.client("lambda").publish_version(FunctionName=function_name)
        arn = published["FunctionArn"]
        self.runtime.register(**{**self.runtime.functions[unqualified], "arn": arn})
        self.physical[logical_id] = arn
        self.attributes[(logical_id, "Version")] = published["Version"]

    def _topic(self, logical_id: str, name: str, props: dict) -> None:
        arn = self.client("sns").create_topic(Name=f"{STACK_NAME}-{name}"[:256])["TopicArn"]
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName=f"capture-{name}"[:80])["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        self.physical[logical_id] = arn
        self.attributes[(logical_id, "TopicName")] = arn.rsplit(":", 1)[1]
        self.attributes[(logical_id, "TopicArn")] = arn
        self.topic_queues[arn] = queue_url

    def _queue(self, logical_id: str, name: str, props: dict) -> None:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"{STACK_NAME}-{name}"[:80])["QueueUrl"]
        self.physical[logical_id] = url
        self.attributes[(logical_id, "Arn")] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.attributes[(logical_id, "QueueName")] = url.rsplit("/", 1)[1]

    def _table(self, logical_id: str, name: str, props: dict) -> None:
        """A table with the template's key schema and attribute types (the run lock), on demand."""
        table = f"{STACK_NAME}-{name}"[:255]
        arn = self.client("dynamodb").create_table(
            TableName=table,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )["TableDescription"]["TableArn"]
        self.physical[logical_id] = table
        self.attributes[(logical_id, "Arn")] = arn

    def _key(self, logical_id: str, name: str, props: dict) -> None:
        # No rehearsed call uses KMS (moto does not enforce bucket or job encryption keys); a stable
        # identifier keeps the rendered definition identical from run to run.
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{STACK_NAME}/{logical_id}"))
        self.physical[logical_id] = key_id
        self.attributes[(logical_id, "Arn")] = f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def _state_machine_ref(self, logical_id: str, name: str, props: dict) -> None:
        # Only reachable from a resource that refers back to the machine (a trigger's environment).
        self.physical[logical_id] = f"arn:aws:states:{self.region}:{self.account}:stateMachine:{_machine_name(name)}"

    # -- notifications -----------------------------------------------------------------

    def sent_notifications(self) -> list[dict]:
        """Messages published to the stack's topics (read from their capture queues)."""
        sqs = self.client("sqs")
        messages = []
        for topic, queue_url in self.topic_queues.items():
            while True:
                batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    body = json.loads(message["Body"])
                    messages.append(
                        {
                            "topic": topic,
                            "subject": body.get("Subject"),
                            "message": body.get("Message"),
                            "attributes": body.get("MessageAttributes", {}),
                        }
                    )
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


def _machine_name(name: str) -> str:
    return f"{STACK_NAME}-{name}"[:80]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
