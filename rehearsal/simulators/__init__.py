"""The AWS services the rehearsal simulates, one module each.

- :mod:`rehearsal.simulators.sagemaker`: training and evaluation jobs;
- :mod:`rehearsal.simulators.bedrock`: custom-model import and on-demand deployment;
- :mod:`rehearsal.simulators.service_quotas`: the account's GPU instance quotas;
- :mod:`rehearsal.simulators.functions`: the project's Lambda handlers, run in-process;
- :mod:`rehearsal.simulators.faults`: stages, durations, injected faults and service errors;
- :mod:`rehearsal.simulators.routing`: boto3 calls routed to the simulators while a rehearsal runs.
"""
