"""RFT reward service: composable graders behind the reward Lambda, a local CLI and a pre-flight check.

Public entry points (the handler imports only what it needs, to keep cold start light):

- ``lambdas.reward.engine.compile_spec(spec, ...) -> RewardFunction``: validate a grader spec
  and build a ``grade_batch(items) -> results`` callable carrying ``.score_range``.
- ``lambdas.reward.presets.load_preset(name)`` / ``list_presets()``: the shipped presets.
- ``lambdas.reward.verify.verify_grader(grade_batch, rows, spec=...) -> VerifyReport``: the
  pre-flight "is this grader hackable or broken" check used by the CLI and the preflight Lambda.
- ``lambdas.reward.handler.lambda_handler``: the Lambda entry point (``GRADER_SPEC`` / ``GRADER_PRESET``).
- ``python -m lambdas.reward {grade,verify,presets}``: the local CLI.
"""
