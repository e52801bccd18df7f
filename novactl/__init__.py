"""``novactl``: the pipeline's command line (``novactl --help``, or ``python -m novactl --help``).

Offline: ``prepare`` (a CSV or JSONL table -> SFT, RFT and evaluation datasets), ``validate`` (what the
pipeline's first two states would report), ``rehearse`` (your run input and datasets on simulated AWS).
On AWS, with the deployed stack: ``start``, ``watch``, ``list``, ``show``, ``compare``, ``approve``,
``reject``, ``rollback``, ``cleanup``.
"""
