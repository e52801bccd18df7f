"""The checkpoint URI rule: a training-job escrow checkpoint of this account, or a reason."""

from __future__ import annotations

import pytest

from lambdas.pipeline.naming import account_of_arn
from lambdas.pipeline.s3uri import CheckpointUriError, check_checkpoint_uri
from tests.unit.pipeline import samples

OTHER_ACCOUNT = "111122223333"


def test_a_training_job_checkpoint_of_this_account_is_accepted() -> None:
    bucket, key = check_checkpoint_uri(samples.SFT_CHECKPOINT, samples.ACCOUNT)
    assert bucket == f"customer-escrow-{samples.ACCOUNT}-smtj-0a1b2c3d"
    assert key == "nova-run-1-0b9d6cbe-sft-a1/checkpoint/"


def test_another_accounts_escrow_bucket_names_both_accounts() -> None:
    uri = f"s3://customer-escrow-{OTHER_ACCOUNT}-smtj-0a1b2c3d/job/checkpoint/"
    with pytest.raises(CheckpointUriError) as caught:
        check_checkpoint_uri(uri, samples.ACCOUNT)
    message = str(caught.value)
    assert f"escrow bucket of account {OTHER_ACCOUNT}, not of this account {samples.ACCOUNT}" in message
    assert message.startswith(uri)


def test_a_hyperpod_checkpoint_cannot_be_used_by_training_job_evaluation() -> None:
    uri = f"s3://customer-escrow-{samples.ACCOUNT}-hp-0a1b2c3d/job/checkpoint/"
    with pytest.raises(CheckpointUriError, match="HyperPod checkpoint .*training-job evaluation cannot use it"):
        check_checkpoint_uri(uri, samples.ACCOUNT)


@pytest.mark.parametrize("uri", ["s3://my-bucket/checkpoints/sft/", "s3://escrow-123456789012-smtj-x/ckpt/"])
def test_a_bucket_that_is_not_an_escrow_bucket_is_refused(uri: str) -> None:
    with pytest.raises(CheckpointUriError, match=r"is not in an escrow bucket: .*customer-escrow-<account>-smtj-<id>"):
        check_checkpoint_uri(uri, samples.ACCOUNT)


@pytest.mark.parametrize(
    "bucket",
    [
        "customer-escrow-smtj-0a1b2c3d",  # no account at all
        "customer-escrow-12345-smtj-0a1b2c3d",  # not 12 digits
        f"customer-escrow-{samples.ACCOUNT}-sm-0a1b2c3d",  # neither smtj nor hp
        f"customer-escrow-{samples.ACCOUNT}-smtj",  # no id
    ],
)
def test_an_escrow_bucket_name_without_account_kind_or_id_is_malformed(bucket: str) -> None:
    with pytest.raises(CheckpointUriError, match=f"bucket {bucket} is not a well-formed escrow bucket name"):
        check_checkpoint_uri(f"s3://{bucket}/job/checkpoint/", samples.ACCOUNT)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("customer-escrow-123456789012-smtj-x/ckpt/", "expected an s3://bucket/key URI"),
        (f"s3://customer-escrow-{samples.ACCOUNT}-smtj-x", "names a bucket but no object"),
        ("s3://Customer_Escrow/ckpt/", "does not name a valid bucket"),
    ],
)
def test_a_malformed_uri_is_refused_with_the_checkpoint_form(uri: str, reason: str) -> None:
    with pytest.raises(CheckpointUriError) as caught:
        check_checkpoint_uri(uri, samples.ACCOUNT)
    assert reason in str(caught.value)
    assert "s3://customer-escrow-<account>-smtj-<id>/<key>" in str(caught.value)


def test_without_an_account_only_the_form_is_checked() -> None:
    assert check_checkpoint_uri(f"s3://customer-escrow-{OTHER_ACCOUNT}-smtj-x/k/", None)[0].endswith("-smtj-x")
    with pytest.raises(CheckpointUriError, match="HyperPod"):
        check_checkpoint_uri(f"s3://customer-escrow-{OTHER_ACCOUNT}-hp-x/k/", None)


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        (samples.EXECUTION["id"], samples.ACCOUNT),
        (f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:training-job/nova-run-1-0b9d6cbe-sft-a1", OTHER_ACCOUNT),
        (samples.IMPORT_ROLE_ARN, samples.ACCOUNT),
        ("run-1-0b9d6cbe", None),
        (None, None),
    ],
)
def test_the_account_of_an_arn(arn: str | None, account: str | None) -> None:
    assert account_of_arn(arn) == account
