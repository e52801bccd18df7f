"""Synthesize the app with every outbound connection refused and recorded (run as a subprocess)."""

import os
import socket
import sys

LOG = os.environ["NETGUARD_LOG"]


def _refuse(what):
    with open(LOG, "a") as fh:
        fh.write(f"python {what}\n")
    raise OSError(f"network access during synth: {what}")


_connect = socket.socket.connect


def _guarded_connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _connect(self, address)
    _refuse(f"connect {address!r}")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.create_connection = lambda address, *a, **k: _refuse(f"connect {address!r}")
socket.getaddrinfo = lambda host, *a, **k: _refuse(f"dns {host}")

sys.path.insert(0, os.getcwd())
from pathlib import Path  # noqa: E402

from offline.synth import synthesize_into  # noqa: E402

synthesize_into(Path(sys.argv[1]))
