"""Route boto3 calls to the simulators, only while a rehearsal runs.

:func:`routed` installs two botocore handlers and removes them on exit: one
keeps the request's parameters (``before-parameter-build``), the other answers
the call from the simulator of its service (``before-call``) with a parsed
response, so the request never reaches moto. botocore has already checked the
request against the service model (names, types, required members) when the
handler fires; the simulators add the checks botocore leaves to the service.
Operations a simulator does not implement fall through to moto.

The handlers go into botocore's built-in handler list, which every session
created meanwhile copies, and onto boto3's default session when one exists.
Importing this module registers nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.handlers import BUILTIN_HANDLERS


class Router:
    """Answers calls of the routed services (service id, hyphenated -> simulator) and records them."""

    def __init__(self, routes: Mapping[str, Any]) -> None:
        self.routes = dict(routes)
        self.calls: list[tuple[str, str, dict]] = []

    def handlers(self) -> list[tuple[str, Any]]:
        return [("before-parameter-build", self.stash_params), ("before-call", self.answer)]

    def stash_params(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        if model.service_model.service_id.hyphenize() in self.routes:
            context["rehearsal_params"] = params

    def answer(self, model: Any, context: dict, **_: Any) -> tuple[AWSResponse, dict] | None:
        service = model.service_model.service_id.hyphenize()
        simulator = self.routes.get(service)
        # ``ListAWSDefaultServiceQuotas`` -> ``list_aws_default_service_quotas``, as boto3 names its methods
        method = getattr(simulator, xform_name(model.name), None) if simulator else None
        if method is None:
            return None
        params = context.get("rehearsal_params", {})
        self.calls.append((service, model.name, params))
        try:
            parsed = method(params)
            status = 200
        except ClientError as error:
            parsed, status = dict(error.response), error.response["ResponseMetadata"]["HTTPStatusCode"]
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())})
        return AWSResponse("https://simulated", status, {}, None), parsed


@contextmanager
def routed(routes: Mapping[str, Any]) -> Iterator[Router]:
    """Answer calls of the services in ``routes`` from their simulators until the block ends."""
    router = Router(routes)
    handlers = router.handlers()
    session = boto3.DEFAULT_SESSION._session if boto3.DEFAULT_SESSION is not None else None
    BUILTIN_HANDLERS.extend(handlers)
    if session is not None:
        for event, handler in handlers:
            session.register(event, handler)
    try:
        yield router
    finally:
        for entry in handlers:
            BUILTIN_HANDLERS.remove(entry)
        if session is not None:
            for event, handler in handlers:
                session.unregister(event, handler)
