"""The pipeline's state machine: its description (:mod:`stepfunctions.pipeline`) and the generated ASL file."""
