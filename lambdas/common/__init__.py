"""What every Lambda function family shares: AWS error classification, the artifacts-bucket layout,
custom metric names and the environment-variable names of the functions' settings.

Nothing here imports a function family (``pipeline``, ``notify``, ``trigger``, ``reward``), so each of
them, and the CDK constructs in ``stacks/``, can import it.
"""
