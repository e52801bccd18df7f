"""The Nova catalog: models, training/evaluation images per region, GPU prices.

One source for the runtime code (recipe rendering, job requests, cost estimates)
and the infrastructure (ECR pull permissions of the SageMaker execution role).
Pure data: no AWS calls.
"""

from __future__ import annotations

from dataclasses import dataclass

# ECR accounts that host the Nova training and evaluation images, per region.
IMAGE_ACCOUNTS: dict[str, str] = {
    "us-east-1": "708977205387",
    "us-west-2": "176779409107",
    "ap-northeast-1": "878185805882",
}
FINE_TUNE_REPOSITORY = "nova-fine-tune-repo"
EVALUATION_REPOSITORY = "nova-evaluation-repo"


@dataclass(frozen=True)
class NovaModel:
    """A customizable Nova model and the image tags of its generation."""

    key: str
    model_type: str
    model_name_or_path: str
    sft_tag: str
    rft_tag: str | None
    eval_tag: str


# The evaluation image is SM-TJ-Eval-V2-latest for Nova 1 and Nova 2 alike: the tag the regional parameters of
# AWS's official recipes give every Nova evaluation recipe on SageMaker training jobs.
MODELS: dict[str, NovaModel] = {
    m.key: m
    for m in (
        NovaModel(
            "nova-2-lite",
            "amazon.nova-2-lite-v1:0:256k",
            "nova-lite-2/prod",
            "SM-TJ-SFT-V2-latest",
            "SM-TJ-RFT-V2-latest",
            "SM-TJ-Eval-V2-latest",
        ),
        NovaModel(
            "nova-lite",
            "amazon.nova-lite-v1:0:300k",
            "nova-lite/prod",
            "SM-TJ-SFT-latest",
            None,
            "SM-TJ-Eval-V2-latest",
        ),
        NovaModel(
            "nova-micro",
            "amazon.nova-micro-v1:0:128k",
            "nova-micro/prod",
            "SM-TJ-SFT-latest",
            None,
            "SM-TJ-Eval-V2-latest",
        ),
        NovaModel(
            "nova-pro",
            "amazon.nova-pro-v1:0:300k",
            "nova-pro/prod",
            "SM-TJ-SFT-latest",
            None,
            "SM-TJ-Eval-V2-latest",
        ),
    )
}

# On-demand USD per instance-hour, used only for the pre-flight budget estimate.
INSTANCE_PRICE_USD_PER_HOUR: dict[str, float] = {
    "ml.p5.48xlarge": 55.04,
    "ml.p4d.24xlarge": 37.69,
    "ml.g5.12xlarge": 7.09,
    "ml.g5.48xlarge": 20.36,
}


def image_uri(region: str, repository: str, tag: str) -> str:
    """The ECR image URI of a Nova image in ``region`` (raises KeyError for unsupported regions)."""
    account = IMAGE_ACCOUNTS[region]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}"


# Which repository and image tag each pipeline method runs with.
METHODS = ("sft", "rft", "eval")


class UnsupportedMethodError(ValueError):
    """The model has no image for the method (e.g. RFT on a Nova 1 model)."""


def method_image(model: NovaModel, method: str, region: str) -> str:
    """The training or evaluation image of ``method`` (``sft``, ``rft`` or ``eval``) for ``model``."""
    if method == "sft":
        return image_uri(region, FINE_TUNE_REPOSITORY, model.sft_tag)
    if method == "rft":
        if model.rft_tag is None:
            raise UnsupportedMethodError(f"{model.key} does not support RFT on SageMaker training jobs")
        return image_uri(region, FINE_TUNE_REPOSITORY, model.rft_tag)
    if method == "eval":
        return image_uri(region, EVALUATION_REPOSITORY, model.eval_tag)
    raise UnsupportedMethodError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")


def hourly_price(instance_type: str) -> float:
    """USD per instance-hour of ``instance_type`` (KeyError when the price table lacks it)."""
    return INSTANCE_PRICE_USD_PER_HOUR[instance_type]


# -- Bedrock: what customization and inference cost on the Bedrock road ----------------------------------


@dataclass(frozen=True)
class BedrockPrices:
    """USD prices of one Nova model on Amazon Bedrock, in the units Bedrock bills.

    ``sft_per_1k_tokens``: supervised fine-tuning, per 1,000 tokens trained (tokens of the training file x
    epochs). ``rft_per_hour``: reinforcement fine-tuning, per hour of training (None: Bedrock offers no RFT for
    the model). ``storage_per_month``: each custom model, per month it is kept. ``input_per_1k`` /
    ``output_per_1k``: on-demand inference per 1,000 tokens, the same for the base model and its custom models
    deployed on demand. ``unconfirmed`` names the prices that were not read from the pricing page: the
    estimate says so beside the figure.
    """

    sft_per_1k_tokens: float
    rft_per_hour: float | None
    storage_per_month: float
    input_per_1k: float
    output_per_1k: float
    unconfirmed: tuple[str, ...] = ()


# Source: "Amazon Bedrock pricing" (https://aws.amazon.com/bedrock/pricing/), Amazon Nova: "Model customization"
# and "On-Demand" inference, US East (N. Virginia), as recorded for this table in December 2025 (see
# docs/contracts/bedrock-customization.md, "Prices"). Used only for the pre-flight estimate and budget check.
BEDROCK_PRICES_SOURCE = "Amazon Bedrock pricing (aws.amazon.com/bedrock/pricing), Amazon Nova, us-east-1, 2025-12"
BEDROCK_PRICES: dict[str, BedrockPrices] = {
    "nova-micro": BedrockPrices(0.001, None, 1.95, 0.000035, 0.00014),
    "nova-lite": BedrockPrices(0.002, None, 1.95, 0.00006, 0.00024),
    "nova-pro": BedrockPrices(0.008, None, 1.95, 0.0008, 0.0032),
    # Nova 2 Lite: inference as published; its customization prices are placeholders on the high side.
    "nova-2-lite": BedrockPrices(
        0.008, 100.0, 1.95, 0.0003, 0.0025, unconfirmed=("sft_per_1k_tokens", "rft_per_hour", "storage_per_month")
    ),
}


def bedrock_prices(model: str) -> BedrockPrices:
    """The Bedrock prices of ``model`` (KeyError when the table lacks it)."""
    return BEDROCK_PRICES[model]
