"""Simulated Service Quotas: the account's SageMaker training-job instance quotas.

Answers ``ListServiceQuotas`` and ``ListAWSDefaultServiceQuotas`` for the quotas
preflight checks (``<instance type> for training job usage``), from the scenario.
"""

from __future__ import annotations

import hashlib

from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR
from lambdas.pipeline.quotas import quota_name
from rehearsal.simulators.faults import check_request

# Enough ml.p5.48xlarge for the default plan's busiest phase (SFT 4 beside a 1-instance evaluation).
DEFAULT_QUOTAS: dict[str, float] = {"ml.p5.48xlarge": 8}


class ServiceQuotasSimulator:
    """The account's SageMaker training-job instance quotas (``<type> for training job usage``).

    ``ListServiceQuotas`` answers the applied values in ``quotas`` (instance type -> value);
    ``ListAWSDefaultServiceQuotas`` answers 0 for every priced instance type, as new accounts see
    for the large GPU types. Both answer in pages of ``MaxResults``.
    """

    def __init__(self, quotas: dict[str, float] | None = None) -> None:
        quotas = DEFAULT_QUOTAS if quotas is None else quotas
        self.applied = [self._quota(kind, value) for kind, value in sorted(quotas.items())]
        self.defaults = [self._quota(kind, 0) for kind in sorted(INSTANCE_PRICE_USD_PER_HOUR)]

    def list_service_quotas(self, params: dict) -> dict:
        check_request("service-quotas", "ListServiceQuotas", params)
        return self._page(self.applied, params)

    def list_aws_default_service_quotas(self, params: dict) -> dict:
        check_request("service-quotas", "ListAWSDefaultServiceQuotas", params)
        return self._page(self.defaults, params)

    @staticmethod
    def _quota(instance_type: str, value: float) -> dict:
        code = "L-" + hashlib.sha1(instance_type.encode()).hexdigest()[:8].upper()
        return {
            "ServiceCode": "sagemaker",
            "ServiceName": "Amazon SageMaker",
            "QuotaCode": code,
            "QuotaName": quota_name(instance_type),
            "Value": float(value),
            "Unit": "None",
            "Adjustable": True,
        }

    @staticmethod
    def _page(quotas: list[dict], params: dict) -> dict:
        if params["ServiceCode"] != "sagemaker":
            return {"Quotas": []}
        start = int(params.get("NextToken") or 0)
        size = params.get("MaxResults", 100)
        page: dict[str, object] = {"Quotas": quotas[start : start + size]}
        if start + size < len(quotas):
            page["NextToken"] = str(start + size)
        return page
