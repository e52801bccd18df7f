"""Offline rehearsal: the synthesized state machine, run end to end on moto with the project's real Lambda code.

``python -m rehearsal`` (``make rehearse``) runs the default scenario; the
integration tests (``tests/integration``) run every failure path through
:func:`rehearsal.runner.rehearse`.

- :mod:`rehearsal.cloud`: synthesize, provision simulated resources, render the definition;
- :mod:`rehearsal.bridge`: the only patches of moto's interpreter (Lambda dispatch, SageMaker ``.sync``, time);
- :mod:`rehearsal.simulators`: SageMaker jobs and Bedrock import/deployment;
- :mod:`rehearsal.functions`: the in-process Lambda runtime;
- :mod:`rehearsal.datasets`: generated SFT/RFT/evaluation data;
- :mod:`rehearsal.runner` and :mod:`rehearsal.progress`: the run, its live view and its record.
"""
