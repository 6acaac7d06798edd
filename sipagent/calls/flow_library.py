"""Finding and loading flow functions from flow files.

A flow spec is ``module`` or ``module:function`` (default function
``flow``), where module names a ``.py`` file in the flows folder.  Files are
loaded by path, not through ``sys.path``, so an operator's flows folder
cannot shadow a library module.  A file is re-read when its modification time
changes: new calls get the new code, calls in progress keep the function
object they started with.  A file that fails to load is reported with file,
line and error, and the previous good version stays in service.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import structlog

log = structlog.get_logger("sipagent.calls.flow_library")

FlowFunction = Callable[..., Awaitable[None]]
_SPEC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_][A-Za-z0-9_]*))?$")


class FlowLoadError(Exception):
    def __init__(self, spec: str, path: Path, line: int | None, error: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"flow {spec!r} ({where}): {error}")
        self.spec, self.path, self.line, self.error = spec, path, line, error


@dataclass
class _Loaded:
    mtime_ns: int
    function: FlowFunction


class FlowLibrary:
    def __init__(self, flows_dir: Path, on_reload: Callable[[str, bool], None] | None = None,
                 on_prompts: Callable[[dict], None] | None = None):
        self.dir = Path(flows_dir)
        self._loaded: dict[str, _Loaded] = {}
        self._generation = 0
        self._on_reload = on_reload
        self._on_prompts = on_prompts

    def parse(self, spec: str) -> tuple[Path, str]:
        m = _SPEC.match(spec)
        if not m:
            raise FlowLoadError(spec, self.dir, None, "a flow is 'module' or 'module:function'")
        return self.dir / f"{m.group(1)}.py", m.group(2) or "flow"

    def get(self, spec: str) -> FlowFunction:
        """The current function for a spec; raises FlowLoadError only when no
        good version was ever loaded."""
        path, func_name = self.parse(spec)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            cached = self._loaded.get(spec)
            if cached:
                return cached.function
            raise FlowLoadError(spec, path, None, "flow file not found") from None
        cached = self._loaded.get(spec)
        if cached and cached.mtime_ns == mtime:
            return cached.function
        try:
            function = self._load(spec, path, func_name)
        except FlowLoadError as exc:
            log.error("flow failed to load", flow=spec, file=str(exc.path), line=exc.line,
                      error=exc.error, keeping_previous=bool(cached))
            if self._on_reload and cached:
                self._on_reload(spec, False)
            if cached:
                cached.mtime_ns = mtime  # report once per bad edit, not per call
                return cached.function
            raise
        if cached and self._on_reload:
            self._on_reload(spec, True)
            log.info("flow reloaded", flow=spec, file=str(path))
        self._loaded[spec] = _Loaded(mtime, function)
        return function

    def _load(self, spec: str, path: Path, func_name: str) -> FlowFunction:
        self._generation += 1
        mod_name = f"sipacd_flow_{path.stem}_{self._generation}"
        try:
            source = path.read_text()
            code = compile(source, str(path), "exec")
            module = importlib.util.module_from_spec(
                importlib.util.spec_from_loader(mod_name, loader=None, origin=str(path)))
            module.__file__ = str(path)
            sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
            exec(code, module.__dict__)
        except SyntaxError as exc:
            raise FlowLoadError(spec, path, exc.lineno, f"SyntaxError: {exc.msg}") from None
        except Exception as exc:
            line = _line_in(path, exc.__traceback__)
            raise FlowLoadError(spec, path, line, f"{type(exc).__name__}: {exc}") from None
        function = getattr(module, func_name, None)
        if function is None:
            raise FlowLoadError(spec, path, None, f"no function {func_name!r} in the file")
        if not inspect.iscoroutinefunction(function):
            raise FlowLoadError(spec, path, None, f"{func_name!r} must be an 'async def' function")
        prompts = getattr(module, "PROMPTS", None)
        if self._on_prompts and isinstance(prompts, dict):
            self._on_prompts(prompts)
        return function

    def check(self, spec: str) -> FlowLoadError | None:
        path, func_name = self.parse(spec)
        try:
            self._load(spec, path, func_name)
        except FlowLoadError as exc:
            return exc
        return None


def _line_in(path: Path, tb) -> int | None:
    line = None
    for frame in traceback.extract_tb(tb):
        if Path(frame.filename) == path:
            line = frame.lineno
    return line
