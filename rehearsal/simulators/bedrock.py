"""Simulated Bedrock custom-model import and on-demand deployment.

``CreateCustomModel``, ``GetCustomModel``, ``ListCustomModels``, ``DeleteCustomModel``
and the same for ``...CustomModelDeployment``: ``Creating`` until the calling
flow's clock passes the simulated duration, then ``Active`` or ``Failed``;
``clientRequestToken`` is idempotent; an import must point at a checkpoint a
simulated job produced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from dataclasses import dataclass

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

    def status(self) -> str:
        if clock.elapsed() < self.ready:
            return "Creating"
        return "Failed" if self.failure else "Active"


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
        self._model(params["modelIdentifier"]).deleted = True
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
            "modelArn": deployment.request["modelArn"],
            "createdAt": self._when(deployment.created),
            "status": deployment.status(),
            "lastUpdatedAt": self._when(min(clock.elapsed(), deployment.ready)),
        }
        if deployment.request.get("description"):
            out["description"] = deployment.request["description"]
        if out["status"] == "Failed":
            out["failureMessage"] = deployment.failure
        return out

    def list_custom_model_deployments(self, params: dict) -> dict:
        return {
            "modelDeploymentSummaries": [
                {
                    "customModelDeploymentArn": d.arn,
                    "customModelDeploymentName": d.name,
                    "modelArn": d.request["modelArn"],
                    "createdAt": self._when(d.created),
                    "status": d.status(),
                }
                for d in self.deployments.values()
                if not d.deleted and params.get("modelArnEquals", d.request["modelArn"]) == d.request["modelArn"]
            ]
        }

    def delete_custom_model_deployment(self, params: dict) -> dict:
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


def _short_id(name: str, token: str | None) -> str:
    return hashlib.sha1(f"{name}|{token or uuid.uuid4()}".encode()).hexdigest()[:12]
