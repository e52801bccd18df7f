"""The harness's only changes to moto's Step Functions interpreter, each one a gap of moto without Docker or AWS.

The definition under test is never rewritten (apart from its substitutions);
these patches change how the interpreter reaches the outside world and how it
tells time. They are active inside :func:`installed` only.

1. **Lambda dispatch** (``LambdaSimpleBackend.invoke``). moto without Docker
   echoes the payload instead of running code. An invocation of a function the
   harness created runs the project's real handler in-process
   (:class:`rehearsal.simulators.functions.FunctionRuntime`); a handler exception becomes the
   service's error payload with ``X-Amz-Function-Error: Unhandled``, so the
   interpreter reports ``Error`` = exception class name and ``Cause`` = the JSON
   payload, and the definition's Retry/Catch see what they would see on AWS. This
   sits below boto3, so a handler that invokes another function (the pre-flight
   grader smoke test) is bridged too. Each ``lambda:invoke`` task's resolved
   parameters are also validated against botocore's ``lambda`` ``Invoke`` shape.
2. **SageMaker and Bedrock ``.sync``** (the Task factory for ``sagemaker`` and ``bedrock``). moto rejects
   ``arn:aws:states:::sagemaker:createTrainingJob.sync``. :class:`SageMakerTask`
   sends the resolved parameters to the simulated SageMaker (which validates them
   against botocore's ``CreateTrainingJob`` input shape, enums and patterns
   included, and answers ``ValidationException`` otherwise), then, as Step Functions does,
   waits for a terminal status: the job's simulated duration passes on the
   branch's clock instead of the wall clock. ``Completed`` returns the
   DescribeTrainingJob output (timestamps in epoch milliseconds); ``Failed`` or
   ``Stopped`` raises ``States.TaskFailed`` with the description as ``Cause``; a
   service error surfaces as ``SageMaker.<Code>`` (``Exception`` appended when
   the code lacks it, as the aws-sdk integrations do). ``bedrock:createModelCustomizationJob.sync``
   (:class:`BedrockTask`) does the same against the simulated Bedrock: the parameters, written with
   capitals as Step Functions takes them (``JobName``), become the API's members (``jobName``), the job
   runs on the branch's clock, and a ``Failed`` job raises ``States.TaskFailed`` with the final
   ``GetModelCustomizationJob`` response as ``Cause``; a refused request is ``Bedrock.<Code>``.
3. **Simulated time** (Wait, Retry, history timestamps, ``$$.State.EnteredTime``).
   Wait states and retry intervals advance the simulated clock of their flow
   instead of sleeping; history events and context timestamps read it.
4. **Parallel branches** (``BranchWorker.start``, ``BranchesDecl._eval_body``).
   Each branch runs on a clock forked at the Parallel's start, and the Parallel
   ends at its latest branch's end, so the history shows branches overlapping in
   simulated time. Branches run one after the other in real time, which makes
   runs deterministic (a failing branch stops the branches not yet started, as
   Step Functions stops its siblings).
5. **Clock inheritance** (``threading.Thread.start``/``run``). The interpreter
   evaluates states in helper threads; each new thread inherits the simulated
   clock of the thread that started it.
6. **Parse once** (``AmazonStateLanguageParser.parse``). moto parses a definition
   with a pure-Python ANTLR parser when the machine is created and again for each
   execution (about two seconds for the pipeline); the parsed program holds no
   execution state, so one parse per definition text is reused.
7. **Task tokens** (``StateTaskServiceCallback._wait_for_task_token_timeout``). A
   ``.waitForTaskToken`` task (Wait for approval) hands its token to the scenario's
   approver (:func:`approver`), which decides on the simulated clock (writes the decision
   file and delivers its event, so ``SendTaskSuccess`` completes the token) or lets it
   lapse; a token still open then times out after the task's timeout in simulated time
   (``States.Timeout``), instead of blocking the wall clock for days.

8. **History order** (``StepFunctionResponse.get_execution_history``). moto returns the events oldest first
   whatever the request says; with ``reverseOrder`` true they come newest first, as Step Functions returns them
   (the notify function reads an unfinished run's trail that way). All events come in one page.

Not bridged: JSONata. moto's JSONata evaluator is a stub, so a definition that
uses ``QueryLanguage: JSONata`` is refused up front (:mod:`rehearsal.cloud`); the
pipeline's definition is JSONPath.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _datetime
import functools
import re
import threading
import time as _time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast
from unittest import mock

from botocore.exceptions import ClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp as timestamp_module
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.responses import StepFunctionResponse

from offline.shapes import operation_model, validate_request
from rehearsal import clock
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.bedrock_runtime import BedrockRuntimeSimulator
from rehearsal.simulators.functions import FunctionRuntime
from rehearsal.simulators.routing import routed
from rehearsal.simulators.sagemaker import SageMakerSimulator
from rehearsal.simulators.service_quotas import ServiceQuotasSimulator


class _Active:
    runtime: FunctionRuntime | None = None
    sagemaker: SageMakerSimulator | None = None
    bedrock: BedrockSimulator | None = None
    # Called with (task token, timeout seconds) when a .waitForTaskToken task waits.
    approver: Callable[[str, int], None] | None = None


_ACTIVE = _Active()


# -- 1. Lambda dispatch --------------------------------------------------------------------

_original_invoke = LambdaSimpleBackend.invoke


def _invoke(
    self: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> str | bytes | None:
    function = self.get_function(function_name, qualifier)
    runtime = _ACTIVE.runtime
    if runtime is None or not runtime.knows(function.function_arn):
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    payload, errored = runtime.invoke(function.function_arn, body)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


_original_lambda_task = StateTaskServiceLambda._eval_service_task


def _lambda_task(
    self: StateTaskServiceLambda,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict,
    state_credentials: Any,
) -> None:
    validate_request("lambda", "Invoke", normalised_parameters)
    _original_lambda_task(self, env, resource_runtime_part, normalised_parameters, state_credentials)


# -- 2. SageMaker and Bedrock .sync ------------------------------------------------------


def service_error_name(prefix: str, code: str) -> str:
    """``SageMaker.ThrottlingException``: the integration's prefix and the code, ``Exception`` appended if missing."""
    return f"{prefix}.{code}" if code.endswith("Exception") else f"{prefix}.{code}Exception"


def _task_failed(*, resource: str, resource_type: str, error: str, cause: str) -> EventDetails:
    """The details of a TaskFailed event.

    moto declares every kind of event detail a required key of ``EventDetails``, yet an event
    carries exactly one, as moto's own tasks build them.
    """
    details = TaskFailedEventDetails(resource=resource, resourceType=resource_type, error=error, cause=cause)
    return cast(EventDetails, {"taskFailedEventDetails": details})


class _SimulatedJobTask(StateTaskServiceCallback):
    """``arn:aws:states:::<service>:<action>[.sync]`` against a simulated service that runs jobs.

    A subclass names the service and says how the job's name is found in the request and how the job is run
    to its end (:meth:`_run_to_end`: the final description and whether the job completed).
    """

    service = ""  # the integration's service name in the Resource
    error_prefix = ""  # Step Functions' prefix of the service's errors
    service_label = ""  # how the cause of a refused request names the service

    def __init__(self) -> None:
        super().__init__(
            supported_integration_patterns={
                ResourceCondition(ResourceCondition.Sync),
                ResourceCondition(ResourceCondition.WaitForTaskToken),
            }
        )

    def _simulator(self) -> Any:
        raise NotImplementedError

    def _request(self, parameters: dict) -> dict:
        return parameters

    def _job_name(self, parameters: dict) -> str:
        raise NotImplementedError

    def _run_to_end(self, simulator: Any, name: str, *, stop: bool) -> tuple[dict, bool]:
        raise NotImplementedError

    def _validate_service_integration_is_supported(self) -> None:
        pass  # any action is forwarded to the simulator; unknown ones fail at run time

    def _get_sfn_resource_type(self) -> str:
        return self.service

    def _operation(self) -> str:
        action = self.resource.api_action
        return action[0].upper() + action[1:]

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        simulator = self._simulator()
        operation = self._operation()
        method = getattr(simulator, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower(), None)
        if simulator is None or method is None:
            raise RuntimeError(f"The rehearsal does not simulate {self.service}:{operation}")
        # The simulator validates the request against botocore's input shape (a ValidationException otherwise).
        env.stack.append(method(self._request(copy.deepcopy(normalised_parameters))))

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Callable[[], Any]:
        env.stack.pop()  # the create response; the task's output is the final description
        name = self._job_name(normalised_parameters)
        simulator = self._simulator()
        if simulator is None:
            raise RuntimeError(f"The rehearsal's {self.service} simulator is not installed")

        def resolve() -> dict:
            # A cancelled branch: Step Functions stops the job
            description, completed = self._run_to_end(simulator, name, stop=not env.is_running())
            if completed or not env.is_running():
                return description
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=_task_failed(
                        resource=self._get_sfn_resource(),
                        resource_type=self._get_sfn_resource_type(),
                        error=StatesErrorNameType.StatesTaskFailed.to_name(),
                        cause=to_json_str(description),
                    ),
                )
            )

        return resolve

    def _eval_sync(
        self,
        env: Any,
        sync_resolver: Callable[[], Any] | None,
        timeout_seconds: int | None,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if sync_resolver is None:
            raise RuntimeError("a .sync task without a resolver")
        return sync_resolver()  # one call: the simulated wait happens on the clock, not in a poll loop

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            error = service_error_name(self.error_prefix, code)
            cause = (
                f"{ex.response['Error']['Message']} (Service: {self.service_label}; Status Code: "
                f"{ex.response['ResponseMetadata']['HTTPStatusCode']}; Error Code: {code}; "
                f"Request ID: {ex.response['ResponseMetadata']['RequestId']}; Proxy: null)"
            )
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=_task_failed(
                    resource=self._get_sfn_resource(),
                    resource_type=self._get_sfn_resource_type(),
                    error=error,
                    cause=cause,
                ),
            )
        return super()._from_error(env=env, ex=ex)


class SageMakerTask(_SimulatedJobTask):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` against the simulated SageMaker."""

    service, error_prefix, service_label = "sagemaker", "SageMaker", "AmazonSageMaker"

    def _simulator(self) -> Any:
        return _ACTIVE.sagemaker

    def _job_name(self, parameters: dict) -> str:
        return str(parameters["TrainingJobName"])

    def _run_to_end(self, simulator: Any, name: str, *, stop: bool) -> tuple[dict, bool]:
        if stop:
            simulator.stop_training_job({"TrainingJobName": name})
            return simulator.describe_training_job({"TrainingJobName": name}, json_safe=True), False
        description = simulator.run_to_completion(name)
        return description, description["TrainingJobStatus"] == "Completed"


class BedrockTask(_SimulatedJobTask):
    """``arn:aws:states:::bedrock:createModelCustomizationJob[.sync]`` against the simulated Bedrock.

    Step Functions takes the API's members with a capital first letter (``JobName``,
    ``TrainingDataConfig: {S3Uri}``, ``CustomizationConfig: {RftConfig: ...}``); the keys of a map member
    (``HyperParameters``: ``epochCount``...) are data and stay as written (:func:`api_members`). The
    ``.sync`` output is the final ``GetModelCustomizationJob`` response written the same way (timestamps in
    epoch milliseconds, as the SageMaker integration returns them); a job that ends ``Failed`` or
    ``Stopped`` raises ``States.TaskFailed`` with that response as ``Cause`` (its ``FailureMessage`` says
    why), and a refused request ``Bedrock.<Code>`` (``Bedrock.ThrottlingException``...).
    """

    service, error_prefix, service_label = "bedrock", "Bedrock", "Bedrock"

    def _simulator(self) -> Any:
        return _ACTIVE.bedrock

    def _request(self, parameters: dict) -> dict:
        return dict(api_members("bedrock", self._operation(), parameters))

    def _job_name(self, parameters: dict) -> str:
        return str(parameters["JobName"])

    def _run_to_end(self, simulator: Any, name: str, *, stop: bool) -> tuple[dict, bool]:
        if stop:
            with contextlib.suppress(ClientError):  # it had already ended
                simulator.stop_model_customization_job({"jobIdentifier": name})
        description = simulator.run_job_to_completion(name)
        written = written_as_step_functions("bedrock", "GetModelCustomizationJob", description)
        return written, description["status"] == "Completed"


def api_members(service: str, operation: str, parameters: Any) -> Any:
    """Parameters as an optimized integration writes them (``JobName``) -> the API's members (``jobName``),
    following the operation's input shape; map keys and members the shape does not know stay as written."""
    return _rename(operation_model(service, operation).input_shape, parameters, to_api=True)


def written_as_step_functions(service: str, operation: str, response: Any) -> Any:
    """An API response (``jobName``) as an optimized integration returns it (``JobName``); times in epoch ms."""
    return _rename(operation_model(service, operation).output_shape, response, to_api=False)


def _rename(shape: Any, value: Any, *, to_api: bool) -> Any:
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict) and not shape.metadata.get("document"):
        members = {(m[:1].upper() + m[1:] if to_api else m): m for m in shape.members}
        renamed = {}
        for key, item in value.items():
            member = members.get(key)
            if member is None:
                renamed[key] = item
                continue
            renamed[member if to_api else member[:1].upper() + member[1:]] = _rename(
                shape.members[member], item, to_api=to_api
            )
        return renamed
    if shape.type_name == "list" and isinstance(value, list):
        return [_rename(shape.member, item, to_api=to_api) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: _rename(shape.value, item, to_api=to_api) for key, item in value.items()}
    if isinstance(value, _datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


_original_service_for = state_task_service_factory.state_task_service_for


def _service_for(service_name: str) -> Any:
    if service_name == "sagemaker":
        return SageMakerTask()
    if service_name == "bedrock":
        return BedrockTask()
    return _original_service_for(service_name)


# -- 3. Simulated time ---------------------------------------------------------------------


def _wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
    if env.is_running():
        clock.advance(wait_seconds)


class _SimulatedTimeModule:
    """``time`` as the retrier sees it: sleeping advances the simulated clock."""

    sleep = staticmethod(clock.advance)

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


class _SimulatedDateTime(_datetime.datetime):
    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _datetime.datetime:  # type: ignore[override]
        now = clock.utcnow()
        return now.astimezone(tz) if tz else now.replace(tzinfo=None)


class _SimulatedDateTimeModule:
    """``datetime`` as the state and Timestamp-wait modules see it."""

    datetime = _SimulatedDateTime

    def __getattr__(self, name: str) -> Any:
        return getattr(_datetime, name)


# -- 4. Parallel branches ------------------------------------------------------------------

_original_branch_start = BranchWorker.start
_original_branches_eval = branches_decl.BranchesDecl._eval_body


def _branch_start(self: BranchWorker) -> None:
    termination: threading.Event | None = getattr(self._branch_worker_comm, "_termination_event", None)
    if termination is not None and termination.is_set():
        return  # a sibling already failed: Step Functions would stop this branch
    parent = clock.current()
    lane = parent.fork() if parent else None
    with clock.using(lane):
        _original_branch_start(self)
    worker = self._worker_thread
    if worker is not None:
        worker.join()
    if parent is not None and lane is not None:
        parent.children.append(lane)


def _branches_eval(self: Any, env: Any) -> None:
    parent = clock.current()
    mark = len(parent.children) if parent else 0
    try:
        _original_branches_eval(self, env)
    finally:
        if parent is not None:
            for lane in parent.children[mark:]:
                parent.advance_to(lane.seconds)
            del parent.children[mark:]


# -- 5. Clock inheritance ------------------------------------------------------------------

_original_thread_start = threading.Thread.start
_original_thread_run = threading.Thread.run


def _thread_start(self: threading.Thread) -> None:
    self._rehearsal_lane = clock.current()  # type: ignore[attr-defined]
    _original_thread_start(self)


def _thread_run(self: threading.Thread) -> None:
    clock.set_current(getattr(self, "_rehearsal_lane", None))
    _original_thread_run(self)


# -- 7. Task tokens ------------------------------------------------------------------------


def _wait_for_task_token(self: StateTaskServiceCallback, timeout_seconds: int, callback_endpoint: Any) -> Any:
    """The approver acts on the simulated clock; an outcome it did not send is a timeout after ``timeout_seconds``."""
    if _ACTIVE.approver is not None:
        _ACTIVE.approver(callback_endpoint.callback_id, timeout_seconds)
    outcome = callback_endpoint.wait(timeout=0)
    if outcome is None:
        clock.advance(timeout_seconds)
    return outcome


@contextmanager
def approver(decide: Callable[[str, int], None] | None) -> Iterator[None]:
    """While active, ``decide(token, timeout_seconds)`` answers each task token (or lets it lapse)."""
    _ACTIVE.approver = decide
    try:
        yield
    finally:
        _ACTIVE.approver = None


# -- 6. Parse once ----------------------------------------------------------------------------

_original_parse = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=8)
def _parse_once(definition: str) -> Any:
    return _original_parse(definition)


# -- 8. History order --------------------------------------------------------------------------


def _execution_history(self: StepFunctionResponse) -> ActionResult:
    history = dict(self.stepfunction_backend.get_execution_history(self._get_param("executionArn")))
    if self._get_param("reverseOrder"):
        history["events"] = list(reversed(history["events"]))
    return ActionResult(history)


# -- activation ----------------------------------------------------------------------------


@contextmanager
def installed(
    *,
    runtime: FunctionRuntime,
    sagemaker: SageMakerSimulator,
    bedrock: BedrockSimulator,
    service_quotas: ServiceQuotasSimulator | None = None,
    bedrock_runtime: BedrockRuntimeSimulator | None = None,
) -> Iterator[None]:
    """Apply every patch above and route boto3 SageMaker/Bedrock/Bedrock Runtime/Service Quotas calls to the
    simulators."""
    with ExitStack() as stack:
        patch = stack.enter_context
        patch(mock.patch.object(LambdaSimpleBackend, "invoke", _invoke))
        patch(mock.patch.object(StateTaskServiceLambda, "_eval_service_task", _lambda_task))
        patch(mock.patch.object(state_task_factory, "state_task_service_for", _service_for))
        patch(mock.patch.object(WaitFunction, "_wait_interval", _wait_interval))
        patch(mock.patch.object(retrier_decl, "time", _SimulatedTimeModule()))
        patch(mock.patch.object(EventManager, "_get_current_timestamp", staticmethod(clock.utcnow)))
        patch(mock.patch.object(state_module, "datetime", _SimulatedDateTimeModule()))
        patch(mock.patch.object(timestamp_module, "datetime", _SimulatedDateTimeModule()))
        patch(mock.patch.object(BranchWorker, "start", _branch_start))
        patch(mock.patch.object(branches_decl.BranchesDecl, "_eval_body", _branches_eval))
        patch(mock.patch.object(threading.Thread, "start", _thread_start))
        patch(mock.patch.object(threading.Thread, "run", _thread_run))
        patch(mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse_once)))
        patch(mock.patch.object(StateTaskServiceCallback, "_wait_for_task_token_timeout", _wait_for_task_token))
        patch(mock.patch.object(StepFunctionResponse, "get_execution_history", _execution_history))
        patch(
            routed(
                {
                    "sagemaker": sagemaker,
                    "bedrock": bedrock,
                    "bedrock-runtime": bedrock_runtime or BedrockRuntimeSimulator(bedrock),
                    "service-quotas": service_quotas or ServiceQuotasSimulator(),
                }
            )
        )
        _ACTIVE.runtime, _ACTIVE.sagemaker, _ACTIVE.bedrock = runtime, sagemaker, bedrock
        try:
            yield
        finally:
            _ACTIVE.runtime = _ACTIVE.sagemaker = _ACTIVE.bedrock = None
