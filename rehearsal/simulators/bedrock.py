"""Simulated Bedrock custom-model import and on-demand deployment.

``CreateCustomModel``, ``GetCustomModel``, ``ListCustomModels``, ``DeleteCustomModel``
and the same for ``...CustomModelDeployment``: ``Creating`` until the calling
flow's clock passes the simulated duration, then ``Active`` or ``Failed``;
``clientRequestToken`` is idempotent; an import must point at a checkpoint a
simulated job produced.

``UpdateCustomModelDeployment`` moves an ``Active`` deployment to another ``Active``
model: the deployment stays ``Active`` and serves the old model while
``updateDetails.updateStatus`` is ``Updating``, then serves the new one
(``UpdateCompleted``). A model that a live deployment serves cannot be deleted
(``ConflictException``). Requests are checked against the botocore service model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from dataclasses import dataclass, field

from rehearsal import clock
from rehearsal.simulators.faults import MINUTE, Durations, Faults, check_request, service_error


@dataclass
class SimModel:
    arn: str
    name: str
    request: dict
    created: float
    ready: float
    failure: str | None
    epoch: dt.datetime
    deleted: bool = False
    # Deployments: the moves to other models, (model ARN, started, ready), oldest first.
    updates: list[tuple[str, float, float]] = field(default_factory=list)

    def status(self) -> str:
        if clock.elapsed() < self.ready:
            return "Creating"
        return "Failed" if self.failure else "Active"

    def served_model(self) -> str:
        """A deployment's model: the last move that completed, else the model it was created with."""
        done = [arn for arn, _, ready in self.updates if clock.elapsed() >= ready]
        return done[-1] if done else str(self.request["modelArn"])

    def update_details(self) -> dict | None:
        if not self.updates:
            return None
        arn, _, ready = self.updates[-1]
        return {"modelArn": arn, "updateStatus": "Updating" if clock.elapsed() < ready else "UpdateCompleted"}


class BedrockSimulator:
    """Custom-model import and on-demand deployment with Creating -> Active/Failed."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        epoch: dt.datetime,
        faults: Faults,
        durations: Durations,
        checkpoints: dict[str, str],
    ) -> None:
        self.account = account
        self.region = region
        self.epoch = epoch
        self.faults = faults
        self.durations = durations
        self.checkpoints = checkpoints
        self.models: dict[str, SimModel] = {}
        self.deployments: dict[str, SimModel] = {}
        self.calls: list[tuple[str, float]] = []
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()

    def _when(self, seconds: float) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=seconds)

    def create_custom_model(self, params: dict) -> dict:
        check_request("bedrock", "CreateCustomModel", params)
        with self._lock:
            self.calls.append(("CreateCustomModel", clock.elapsed()))
            token = params.get("clientRequestToken")
            if token and ("model", token) in self._tokens:
                return {"modelArn": self._tokens[("model", token)]}
            if any(m.name == params["modelName"] and not m.deleted for m in self.models.values()):
                raise service_error("ConflictException", f"A model named {params['modelName']} already exists")
            uri = params.get("modelSourceConfig", {}).get("s3DataSource", {}).get("s3Uri")
            if not uri:
                raise service_error("ValidationException", "modelSourceConfig.s3DataSource.s3Uri is required")
            if not params.get("roleArn"):
                raise service_error("ValidationException", "roleArn is required to import a model from S3")
            failure = None
            if uri not in self.checkpoints:
                failure = f"The checkpoint {uri} does not exist or is not readable by the service role"
            elif self.faults.fail_at == "import":
                failure = "Model import failed: checkpoint validation error (failure injected by the rehearsal)"
            now = clock.elapsed()
            duration = self.durations.import_ * MINUTE * (0.4 if failure else 1)
            model_id = _short_id(params["modelName"], token)
            arn = f"arn:aws:bedrock:{self.region}:{self.account}:custom-model/imported/{model_id}"
            self.models[arn] = SimModel(arn, params["modelName"], params, now, now + duration, failure, self.epoch)
            if token:
                self._tokens[("model", token)] = arn
            return {"modelArn": arn}

    def get_custom_model(self, params: dict) -> dict:
        model = self._model(params["modelIdentifier"])
        out = {
            "modelArn": model.arn,
            "modelName": model.name,
            "creationTime": self._when(model.created),
            "customizationType": "IMPORTED",
            "modelStatus": model.status(),
        }
        if model.request.get("modelKmsKeyArn"):
            out["modelKmsKeyArn"] = model.request["modelKmsKeyArn"]
        if out["modelStatus"] == "Failed":
            out["failureMessage"] = model.failure
        return out

    def list_custom_models(self, params: dict) -> dict:
        return {
            "modelSummaries": [
                {
                    "modelArn": m.arn,
                    "modelName": m.name,
                    "creationTime": self._when(m.created),
                    "baseModelArn": "",
                    "baseModelName": "",
                    "customizationType": "IMPORTED",
                    "modelStatus": m.status(),
                }
                for m in self.models.values()
                if not m.deleted
                and params.get("nameContains", "") in m.name
                and params.get("modelStatus", m.status()) == m.status()
            ]
        }

    def delete_custom_model(self, params: dict) -> dict:
        check_request("bedrock", "DeleteCustomModel", params)
        with self._lock:
            self.calls.append(("DeleteCustomModel", clock.elapsed()))
            model = self._model(params["modelIdentifier"])
            serving = [d.arn for d in self.deployments.values() if not d.deleted and model.arn in _models_of(d)]
            if serving:
                raise service_error("ConflictException", f"Model {model.arn} is used by deployment {serving[0]}")
            model.deleted = True
            return {}

    def create_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "CreateCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("CreateCustomModelDeployment", clock.elapsed()))
            token = params.get("clientRequestToken")
            if token and ("deployment", token) in self._tokens:
                return {"customModelDeploymentArn": self._tokens[("deployment", token)]}
            model = self._model(params["modelArn"])
            if model.status() != "Active":
                raise service_error("ValidationException", f"Model {model.arn} is {model.status()}, not Active")
            if any(d.name == params["modelDeploymentName"] and not d.deleted for d in self.deployments.values()):
                raise service_error(
                    "ConflictException", f"A deployment named {params['modelDeploymentName']} already exists"
                )
            failure = (
                "Deployment failed: insufficient capacity (failure injected by the rehearsal)"
                if self.faults.fail_at == "deploy"
                else None
            )
            now = clock.elapsed()
            duration = self.durations.deploy * MINUTE * (0.4 if failure else 1)
            arn = (
                f"arn:aws:bedrock:{self.region}:{self.account}:custom-model-deployment/"
                f"{_short_id(params['modelDeploymentName'], token)}"
            )
            self.deployments[arn] = SimModel(
                arn, params["modelDeploymentName"], params, now, now + duration, failure, self.epoch
            )
            if token:
                self._tokens[("deployment", token)] = arn
            return {"customModelDeploymentArn": arn}

    def get_custom_model_deployment(self, params: dict) -> dict:
        deployment = self._deployment(params["customModelDeploymentIdentifier"])
        out = {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.served_model(),
            "createdAt": self._when(deployment.created),
            "status": deployment.status(),
            "lastUpdatedAt": self._when(min(clock.elapsed(), deployment.ready)),
        }
        if deployment.request.get("description"):
            out["description"] = deployment.request["description"]
        if out["status"] == "Failed":
            out["failureMessage"] = deployment.failure
        details = deployment.update_details()
        if details:
            out["updateDetails"] = details
            out["lastUpdatedAt"] = self._when(min(clock.elapsed(), deployment.updates[-1][2]))
        return out

    def update_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "UpdateCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("UpdateCustomModelDeployment", clock.elapsed()))
            deployment = self._deployment(params["customModelDeploymentIdentifier"])
            model = self._model(params["modelArn"])
            problems = []
            if deployment.status() != "Active":
                problems.append(f"Deployment {deployment.arn} is {deployment.status()}, not Active")
            details = deployment.update_details()
            if details and details["updateStatus"] == "Updating":
                problems.append(f"Deployment {deployment.arn} is already updating to {details['modelArn']}")
            if model.status() != "Active":
                problems.append(f"Model {model.arn} is {model.status()}, not Active")
            if problems:
                raise service_error("ValidationException", "; ".join(problems))
            now = clock.elapsed()
            deployment.updates.append((model.arn, now, now + self.durations.deploy * MINUTE))
            return {"customModelDeploymentArn": deployment.arn}

    def list_custom_model_deployments(self, params: dict) -> dict:
        return {
            "modelDeploymentSummaries": [
                {
                    "customModelDeploymentArn": d.arn,
                    "customModelDeploymentName": d.name,
                    "modelArn": d.served_model(),
                    "createdAt": self._when(d.created),
                    "status": d.status(),
                }
                for d in self.deployments.values()
                if not d.deleted and params.get("modelArnEquals", d.served_model()) == d.served_model()
            ]
        }

    def delete_custom_model_deployment(self, params: dict) -> dict:
        check_request("bedrock", "DeleteCustomModelDeployment", params)
        with self._lock:
            self.calls.append(("DeleteCustomModelDeployment", clock.elapsed()))
            self._deployment(params["customModelDeploymentIdentifier"]).deleted = True
            return {}

    def _model(self, identifier: str) -> SimModel:
        for model in self.models.values():
            if identifier in (model.arn, model.name) and not model.deleted:
                return model
        raise service_error("ResourceNotFoundException", f"Model {identifier} not found", 404)

    def _deployment(self, identifier: str) -> SimModel:
        for deployment in self.deployments.values():
            if identifier in (deployment.arn, deployment.name) and not deployment.deleted:
                return deployment
        raise service_error("ResourceNotFoundException", f"Deployment {identifier} not found", 404)


def _models_of(deployment: SimModel) -> set[str]:
    """The models a deployment uses: the one it serves and the one it is moving to."""
    details = deployment.update_details()
    return {deployment.served_model(), *([details["modelArn"]] if details else [])}


def _short_id(name: str, token: str | None) -> str:
    return hashlib.sha1(f"{name}|{token or uuid.uuid4()}".encode()).hexdigest()[:12]
