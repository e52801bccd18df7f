"""The Nova catalog: models, training/evaluation images per region, GPU prices.

One source for the runtime code (recipe rendering, job requests, cost estimates)
and the infrastructure (ECR pull permissions of the SageMaker execution role).
Pure data: no AWS calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    ``output_per_1k``: on-demand inference of the base model through the id the evaluations call it by, per
    1,000 tokens. ``custom_input_per_1k`` / ``custom_output_per_1k``: on-demand inference of a custom model
    deployed on demand (None: billed at the base model's rates). ``unconfirmed`` maps each price that was not
    read from AWS's published prices to why the figure stands: the estimate says so beside it.
    """

    sft_per_1k_tokens: float
    rft_per_hour: float | None
    storage_per_month: float
    input_per_1k: float
    output_per_1k: float
    custom_input_per_1k: float | None = None
    custom_output_per_1k: float | None = None
    unconfirmed: dict[str, str] = field(default_factory=dict)

    def inference(self, custom: bool) -> tuple[float, float]:
        """USD per 1,000 input and output tokens of the base model, or of a custom model deployed on demand."""
        if custom and self.custom_input_per_1k is not None and self.custom_output_per_1k is not None:
            return self.custom_input_per_1k, self.custom_output_per_1k
        return self.input_per_1k, self.output_per_1k


# Sources (docs/contracts/bedrock-customization.md, "Prices"): the AWS Price List API's AmazonBedrock offer for
# us-east-1 (usage types USE1-<model>-Customization-Training, -Customization-Storage, -RFT-Training-Hours,
# -input-tokens / -output-tokens and their -custom-model twins) and "Amazon Bedrock pricing"
# (https://aws.amazon.com/bedrock/pricing/), as published August-September 2026 and checked in November 2026.
# Used only for the pre-flight estimate and budget check.
BEDROCK_PRICES_SOURCE = (
    "AWS Price List API, AmazonBedrock, us-east-1 (Amazon Bedrock pricing, aws.amazon.com/bedrock/pricing), "
    "published 2026-08/09, checked 2026-11"
)
# Nova 1 customization: the figures of the pricing page's Amazon Nova "Model customization" table as recorded when
# the Bedrock road was written; not found again in a published price list since.
_NOVA1_CUSTOMIZATION = (
    "recorded from the pricing page's Nova customization table, not found again in AWS's published price list"
)
# Bedrock bills Nova 2 Lite RFT per training hour (usage type USE1-Nova2.0Lite-RFT-Training-Hours) but no rate
# was found published. Stand-in: the on-demand price of the cluster AWS documents for the same training on
# SageMaker training jobs (RFT with LoRA on Nova 2 Lite: 2 x ml.p5.48xlarge; Amazon Nova 2 user guide, "Compute
# requirements"). LoRA rather than full rank (4 instances): Bedrock deploys its RFT output on demand, and AWS
# documents on-demand inference of Nova custom models for parameter-efficient ones only.
# Replace it once AWS publishes the rate.
NOVA2_RFT_STAND_IN_INSTANCES = 2
BEDROCK_PRICES: dict[str, BedrockPrices] = {
    "nova-micro": BedrockPrices(
        0.001,
        None,
        1.95,
        0.000035,
        0.00014,
        unconfirmed={"sft_per_1k_tokens": _NOVA1_CUSTOMIZATION, "storage_per_month": _NOVA1_CUSTOMIZATION},
    ),
    "nova-lite": BedrockPrices(
        0.002,
        None,
        1.95,
        0.00006,
        0.00024,
        unconfirmed={"sft_per_1k_tokens": _NOVA1_CUSTOMIZATION, "storage_per_month": _NOVA1_CUSTOMIZATION},
    ),
    "nova-pro": BedrockPrices(
        0.008,
        None,
        1.95,
        0.0008,
        0.0032,
        unconfirmed={"sft_per_1k_tokens": _NOVA1_CUSTOMIZATION, "storage_per_month": _NOVA1_CUSTOMIZATION},
    ),
    # Nova 2 Lite: the base model is called through its US inference profile (USE1-Nova2.0Lite-input-tokens,
    # 10% above the global profile's rate); a custom model deployed on demand bills the -custom-model rates.
    "nova-2-lite": BedrockPrices(
        0.00378,
        NOVA2_RFT_STAND_IN_INSTANCES * INSTANCE_PRICE_USD_PER_HOUR["ml.p5.48xlarge"],
        1.95,
        0.00033,
        0.00275,
        custom_input_per_1k=0.0003,
        custom_output_per_1k=0.0025,
        unconfirmed={
            "rft_per_hour": (
                "Bedrock bills Nova 2 Lite RFT per training hour but publishes no rate; this stands in the on-demand "
                f"price of the {NOVA2_RFT_STAND_IN_INSTANCES} ml.p5.48xlarge the same RFT (LoRA) needs on SageMaker "
                "training jobs"
            )
        },
    ),
}


def bedrock_prices(model: str) -> BedrockPrices:
    """The Bedrock prices of ``model`` (KeyError when the table lacks it)."""
    return BEDROCK_PRICES[model]
