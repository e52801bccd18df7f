"""Storage: encryption, public access, TLS, versioning, logging and lifecycle of every bucket."""

from __future__ import annotations

from aws_cdk.assertions import Match

from lambdas.common import env_names
from offline.synth import Synthesized, synthesize

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def _data_buckets(synthesized: Synthesized) -> dict[str, dict]:
    """The KMS-encrypted buckets (data and artifacts), found by property, not by logical id."""
    return {
        k: v
        for k, v in synthesized.resources("AWS::S3::Bucket").items()
        if v["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    }


def test_every_bucket_blocks_public_access_and_is_encrypted(synthesized: Synthesized) -> None:
    buckets = synthesized.resources("AWS::S3::Bucket")
    # the data buckets and, beside them, the bucket their access logs go to
    assert _data_buckets(synthesized) and set(_data_buckets(synthesized)) < set(buckets)
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL, name
        algorithm = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        assert algorithm in {"aws:kms", "AES256"}, name


def test_data_and_artifacts_buckets_use_the_rotating_customer_key(synthesized: Synthesized, template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    keys = synthesized.resources("AWS::KMS::Key")
    buckets = _data_buckets(synthesized)
    # the customer key protects exactly the buckets the pipeline reads and writes
    pipeline_buckets = {
        variables[name]["Ref"]
        for function in synthesized.resources("AWS::Lambda::Function").values()
        for variables in [function["Properties"].get("Environment", {}).get("Variables", {})]
        for name in (env_names.DATA_BUCKET_NAME, env_names.ARTIFACTS_BUCKET_NAME)
        if name in variables
    }
    assert pipeline_buckets and set(buckets) == pipeline_buckets
    for bucket in buckets.values():
        default = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        key_ref = default["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
        assert key_ref in keys
        assert default["BucketKeyEnabled"] is True


def test_data_buckets_are_versioned_logged_and_expire_noncurrent_versions(synthesized: Synthesized) -> None:
    log_buckets = {
        k for k, v in synthesized.resources("AWS::S3::Bucket").items() if k not in _data_buckets(synthesized)
    }
    for name, bucket in _data_buckets(synthesized).items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, name
        assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"] in log_buckets, name
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any(r.get("NoncurrentVersionExpiration") for r in rules), name
        assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in rules), name
        assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_data_is_retained_when_the_stack_is_deleted(synthesized: Synthesized) -> None:
    for name, bucket in _data_buckets(synthesized).items():
        assert bucket["DeletionPolicy"] == "Retain", name
        assert bucket["UpdateReplacePolicy"] == "Retain", name


def test_every_bucket_policy_denies_insecure_transport(synthesized: Synthesized, template) -> None:
    policies = synthesized.resources("AWS::S3::BucketPolicy")
    assert {p["Properties"]["Bucket"]["Ref"] for p in policies.values()} == set(
        synthesized.resources("AWS::S3::Bucket")
    )
    template.all_resources_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Principal": {"AWS": "*"},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_access_log_bucket_uses_s3_managed_encryption_and_expires_logs(template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with([Match.object_like({"ExpirationInDays": 365, "Status": "Enabled"})])
            },
        },
    )


def test_retain_data_false_lets_the_buckets_be_deleted() -> None:
    synthesized = synthesize(context={"retainData": False})
    for name, bucket in _data_buckets(synthesized).items():
        assert bucket["DeletionPolicy"] == "Delete", name
    # ... but the stack does not empty them (the README's "Deleting the stack" says so): no auto-delete resource.
    assert not synthesized.resources("Custom::S3AutoDeleteObjects")


def _data_bucket_statements(synthesized: Synthesized) -> dict[str, dict]:
    """The data bucket's policy statements by Sid (the data bucket is the one the trigger reads)."""
    (trigger,) = [
        f
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "lambdas.trigger.handler.lambda_handler"
    ]
    data_bucket = trigger["Properties"]["Environment"]["Variables"][env_names.DATA_BUCKET_NAME]["Ref"]
    (policy,) = [
        p
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"]["Ref"] == data_bucket
    ]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}


def _object_pattern(statement: dict) -> str:
    """The key pattern of a statement's ``Resource`` (``{"Fn::Join": ["", [<bucket arn>, "/requests/*"]]}``)."""
    return statement["Resource"]["Fn::Join"][1][-1]


def test_requests_may_not_be_written_with_customer_keys_or_another_kms_key(synthesized: Synthesized) -> None:
    statements = _data_bucket_statements(synthesized)
    ssec = statements["DenyRequestsWithCustomerKeys"]
    assert (ssec["Effect"], ssec["Action"], _object_pattern(ssec)) == ("Deny", "s3:PutObject", "/requests/*")
    assert ssec["Condition"] == {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}
    foreign = statements["DenyRequestsWithForeignKmsKeys"]
    (key,) = synthesized.resources("AWS::KMS::Key")
    assert foreign["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": {"Fn::GetAtt": [key, "Arn"]}}
    }
    # By default the account's IAM decides who writes: no writer restriction.
    assert not [sid for sid in statements if sid.endswith("WritersPut")]


def test_listed_writers_are_the_only_principals_that_may_write_their_area() -> None:
    ops = "arn:aws:iam::111122223333:role/MlOps"
    release = "arn:aws:iam::111122223333:role/Release"
    synthesized = synthesize(context={"writers": {"requests": [ops], "approvals": [release], "templates": [release]}})
    statements = _data_bucket_statements(synthesized)
    requests = statements["OnlyRequestsWritersPut"]
    assert (requests["Effect"], requests["Action"], _object_pattern(requests)) == (
        "Deny",
        "s3:PutObject",
        "/requests/*",
    )
    allowed = requests["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    # the listed writer, the trigger (it moves rejected requests) and the template writers
    assert ops in allowed and release in allowed and any(isinstance(a, dict) for a in allowed)
    approvals = statements["OnlyApprovalsWritersPut"]
    assert _object_pattern(approvals) == "/approvals/*"
    assert statements["OnlyTemplatesWritersPut"] and "OnlyDatasetsWritersPut" not in statements


def test_a_bad_writers_value_stops_synthesis_naming_the_area() -> None:
    import pytest

    from stacks.config import SettingsError, parse_writers

    with pytest.raises(SettingsError, match=r"writers.uploads: unknown area"):
        parse_writers("writers", {"uploads": ["arn:aws:iam::111122223333:role/A"]})
    with pytest.raises(SettingsError, match=r"writers.requests: not IAM principal ARNs: \['MlOps'\]"):
        parse_writers("writers", '{"requests": ["MlOps"]}')
    assert parse_writers("writers", {"datasets": ["arn:aws:iam::111122223333:role/Uploader"]}) == {
        "datasets": ("arn:aws:iam::111122223333:role/Uploader",)
    }
