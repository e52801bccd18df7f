"""Offline rehearsal: the synthesized state machine, run end to end on moto with the project's real Lambda code.

``python -m rehearsal`` (``make rehearse``) runs the default scenario; the
integration tests (``tests/integration``) run every failure path through
:func:`rehearsal.runner.rehearse`.

- :mod:`offline` (shared with the tests): synthesis, definition rendering and walking, botocore shape checks;
- :mod:`rehearsal.cloud`: provision simulated resources, render the definition;
- :mod:`rehearsal.bridge`: the only patches of moto's interpreter (Lambda dispatch, SageMaker ``.sync``, time),
  active only while a rehearsal runs;
- :mod:`rehearsal.simulators`: one module per simulated service (SageMaker, Bedrock, Service Quotas, the
  in-process Lambda runtime) and the routing of boto3 calls to them;
- :mod:`rehearsal.datasets`: generated SFT/RFT/evaluation data, or a user's own files served by name;
- :mod:`rehearsal.runner` and :mod:`rehearsal.progress`: the run, its live view and its record.
"""
