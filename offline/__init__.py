"""Offline AWS for the tests and the rehearsal: one kit, imported by both.

- :mod:`offline.synth`: the app synthesized in-process (cdk-nag gate included), once per process;
- :mod:`offline.asl`: the definition rendered as CloudFormation renders it, and its states walked;
- :mod:`offline.shapes`: parameters checked against botocore's service models;
- :mod:`offline.lambda_context`: the Lambda context object handlers receive;
- :mod:`offline.archive`: ``output.tar.gz`` archives as SageMaker jobs write them;
- :mod:`offline.iam`: whether a role of the synthesized template may make a request (IAM's evaluation).

Importing any of these changes nothing outside the module itself.
"""

# moto's default account and the region every offline resource lives in.
ACCOUNT = "123456789012"
REGION = "us-east-1"


def pseudo_parameters(account: str = ACCOUNT, region: str = REGION) -> dict[str, str]:
    """The CloudFormation pseudo parameters a template's ``Ref`` names, in ``account`` and ``region``."""
    return {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
