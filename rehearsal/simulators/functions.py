"""The project's Lambda handlers, run in-process as the Lambda runtime would run them.

Each simulated function gets its own instance of its handler module (imported
under a unique module name with the function's environment set), its own
environment during every call, a fake ``LambdaContext``, a JSON round trip of
the event and the result, and its own log (stdout and stderr of the call) under
the rehearsal's ``logs/`` folder. An exception becomes the error payload the
Lambda service returns (``errorType`` = exception class name, ``errorMessage``,
``stackTrace``), which Step Functions turns into ``Error``/``Cause``.

Invocations are serialized by one re-entrant lock: handlers read ``os.environ``,
which is process-wide, and a handler may invoke another function (a pre-flight
grader smoke test) from inside its own call.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from offline.lambda_context import FakeLambdaContext
from rehearsal import clock

# Simulated duration of one function call (cold starts and S3 round trips included).
LAMBDA_SECONDS = 2.0
# Settings every function sees on AWS; tracing is off because there is no X-Ray daemon here.
_RUNTIME_ENV = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


@dataclass
class Invocation:
    """One call, kept for the run record of the rehearsal."""

    function: str
    started: float
    error: str | None


class _RoutedStream(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in: a function's output goes to its log, the rest passes through.

    One instance per stream for the whole process: Powertools binds its log handler
    to ``sys.stdout`` once, when a handler module is first imported, and later
    runtimes must still receive that output.
    """

    def __init__(self, sinks: threading.local, default: TextIO | None) -> None:
        self.passthrough: TextIO | None = None
        self._sinks = sinks
        self._default = default  # None when the process has no such stream: output is dropped

    def _target(self) -> TextIO | None:
        stack: list[TextIO] | None = getattr(self._sinks, "stack", None)
        if stack:
            return stack[-1]
        return self.passthrough or self._default

    def write(self, text: str) -> int:
        target = self._target()
        return target.write(text) if target is not None else len(text)

    def flush(self) -> None:
        target = self._target()
        if target is not None:
            target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


_SINKS = threading.local()  # per thread: the logs of the functions being invoked (innermost last)
_STDOUT = _RoutedStream(_SINKS, sys.__stdout__)
_STDERR = _RoutedStream(_SINKS, sys.__stderr__)


class FunctionRuntime:
    """Loads and runs the handlers of the simulated functions, by function ARN."""

    def __init__(self, *, code_root: Path, log_dir: Path | None) -> None:
        self.code_root = code_root
        self.log_dir = log_dir
        self.functions: dict[str, dict] = {}  # arn -> {name, handler, environment, timeout, memory}
        self.invocations: list[Invocation] = []
        self._handlers: dict[str, Callable] = {}
        self._lock = threading.RLock()
        self._logs: dict[str, TextIO] = {}
        self._last_function: str | None = None
        self._active: list[str] = []  # functions on the call stack (nested invocations)
        self._saved_streams: tuple[TextIO, TextIO] | None = None

    # -- registration -----------------------------------------------------------------

    def register(
        self,
        *,
        arn: str,
        name: str,
        handler: str,
        environment: dict[str, str],
        timeout: int = 60,
        memory: int = 512,
        label: str | None = None,
    ) -> None:
        self.functions[arn] = {
            "name": name,
            "handler": handler,
            "environment": dict(environment),
            "timeout": timeout,
            "memory": memory,
            "label": label or name,
            "arn": arn,
        }

    def knows(self, arn: str) -> bool:
        return arn in self.functions

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> FunctionRuntime:
        if str(self.code_root) not in sys.path:  # handlers are imported as the runtime imports them
            sys.path.insert(0, str(self.code_root))
        self._saved_streams = (sys.stdout, sys.stderr)
        if sys.stdout is not _STDOUT:
            _STDOUT.passthrough = sys.stdout
            sys.stdout = _STDOUT
        if sys.stderr is not _STDERR:
            _STDERR.passthrough = sys.stderr
            sys.stderr = _STDERR
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved_streams:
            sys.stdout, sys.stderr = self._saved_streams
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        for module_name in [m for m in sys.modules if m.startswith("_rehearsal_fn_")]:
            del sys.modules[module_name]

    # -- invocation -------------------------------------------------------------------

    def invoke(self, arn: str, payload: bytes | str | None) -> tuple[bytes, bool]:
        """Run the function's handler; returns (response payload, whether the function errored)."""
        spec = self.functions[arn]
        with self._lock:
            started = clock.elapsed()
            clock.advance(LAMBDA_SECONDS)
            try:
                event = json.loads(payload) if payload else {}
            except ValueError:
                event = payload.decode() if isinstance(payload, bytes) else payload
            with self._function_environment(spec), self._function_output(spec):
                try:
                    handler = self._handler(spec)
                    context = FakeLambdaContext(
                        function_name=spec["name"],
                        invoked_function_arn=arn,
                        region=arn.split(":")[3],
                        memory_limit_in_mb=spec["memory"],
                        timeout_seconds=spec["timeout"],
                        log_stream_name="rehearsal",
                    )
                    result = handler(json.loads(json.dumps(event)), context)
                    try:
                        body = json.dumps(result)
                    except (TypeError, ValueError) as error:
                        raise _MarshalError(f"Unable to marshal response: {error}") from error
                    self.invocations.append(Invocation(spec["label"], started, None))
                    return body.encode(), False
                except Exception as error:  # noqa: BLE001 - every error is the function's answer
                    error_type = "Runtime.MarshalError" if isinstance(error, _MarshalError) else type(error).__name__
                    traceback.print_exc()
                    self.invocations.append(Invocation(spec["label"], started, error_type))
                    return json.dumps(
                        {
                            "errorMessage": str(error),
                            "errorType": error_type,
                            "requestId": str(uuid.uuid4()),
                            "stackTrace": traceback.format_tb(error.__traceback__),
                        }
                    ).encode(), True

    def _handler(self, spec: dict) -> Callable:
        arn = spec["arn"]
        if arn not in self._handlers:
            module_path, _, attribute = spec["handler"].rpartition(".")
            self._handlers[arn] = getattr(self._load_module(module_path, spec["name"]), attribute)
        return self._handlers[arn]

    def _load_module(self, dotted: str, function_name: str) -> Any:
        """A private instance of the handler module, so module-level state is per function."""
        parent, _, _ = dotted.rpartition(".")
        if parent:
            importlib.import_module(parent)  # the package (and its __init__) as the runtime would
        origin = importlib.util.find_spec(dotted)
        if origin is None or origin.origin is None:
            raise ModuleNotFoundError(f"No module named {dotted!r}")
        unique = f"_rehearsal_fn_{len(self._handlers)}_{dotted.replace('.', '_')}"
        spec = importlib.util.spec_from_file_location(unique, origin.origin)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No loader for module {dotted!r} at {origin.origin}")
        module = importlib.util.module_from_spec(spec)
        module.__package__ = parent  # relative imports resolve inside the real package
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        return module

    @contextmanager
    def _function_environment(self, spec: dict) -> Iterator[None]:
        """os.environ as the function sees it; lazily cached settings are re-read per function."""
        self._switch_to(spec["arn"])
        self._active.append(spec["arn"])
        saved = dict(os.environ)
        os.environ.update(_RUNTIME_ENV)
        region = spec["arn"].split(":")[3]
        os.environ.update(
            {
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_LAMBDA_FUNCTION_NAME": spec["name"],
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec["memory"]),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec['name']}",
            }
        )
        os.environ.update(spec["environment"])
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)
            self._active.pop()
            if self._active:  # back inside the caller of a nested invocation
                self._switch_to(self._active[-1])

    def _switch_to(self, arn: str) -> None:
        if self._last_function != arn:
            _clear_settings_caches()
            self._last_function = arn

    @contextmanager
    def _function_output(self, spec: dict) -> Iterator[None]:
        stack = getattr(_SINKS, "stack", None)
        if stack is None:
            stack = _SINKS.stack = []
        stack.append(self._log(spec))
        try:
            yield
        finally:
            stack.pop()

    def _log(self, spec: dict) -> TextIO:
        label = spec["label"]
        if label not in self._logs:
            if self.log_dir is None:
                self._logs[label] = io.StringIO()
            else:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self._logs[label] = (self.log_dir / f"{label}.log").open("w", encoding="utf-8")
        return self._logs[label]


class _MarshalError(Exception):
    pass


def _clear_settings_caches() -> None:
    """Clear module-level ``functools.lru_cache`` functions of the project's Lambda code.

    Handlers read their settings lazily through cached functions; a function with
    another environment must not see the previous function's settings.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name.startswith("lambdas") or name.startswith("_rehearsal_fn_")):
            continue
        for value in list(vars(module).values()):
            cache_clear = getattr(value, "cache_clear", None)
            if callable(cache_clear) and hasattr(value, "cache_info"):
                cache_clear()
