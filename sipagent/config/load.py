"""Reading sipacd's TOML configuration, and saying precisely what is wrong.

The models live in ``config_models``; this file turns text into a ``Config``
and turns pydantic's errors into lines an operator can act on: one line per
problem, each starting with the dotted key as written in the file
(``queues.support.ring_timeout``, ``routes[0].flow``), because the operator
has to find that key in an editor, not in a Python traceback.
"""
from __future__ import annotations

import difflib
import importlib.resources
import os
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from pydantic import BaseModel, ValidationError

from sipagent.config.values import flow_target
from sipagent.config.models import (
    AgentSection,
    Config,
    ConfigProblems,
    DataSection,
    FlowsSection,
    HttpSection,
    HttpToken,
    LogSection,
    QueueSection,
    RouteEntry,
    SipSection,
    TrunkRegistration,
    TrunkSection,
)

__all__ = [
    "AgentSection", "Config", "ConfigError", "ConfigProblem", "DataSection", "FlowsSection",
    "HttpSection", "HttpToken", "LogSection", "QueueSection", "RouteEntry", "SipSection",
    "TrunkRegistration", "TrunkSection", "config_from_dict", "flow_target",
    "demo_home", "load_config", "load_default_config", "load_or_complain", "parse_config",
]

DEFAULT_CONFIG_RESOURCE = "default_config.toml"


class ConfigProblem(NamedTuple):
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(ValueError):
    """A configuration file that cannot be used, with every reason found."""

    def __init__(
        self,
        source: str,
        problems: list[ConfigProblem],
        *,
        line: int | None = None,
        column: int | None = None,
    ):
        self.source = source
        self.problems = tuple(problems)
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line is not None:
            where = f"{self.source}:{self.line}:{self.column}"
            return "\n".join(f"{where}: {p.message}" for p in self.problems)
        lines = [f"{self.source}: invalid configuration:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; relative paths in it are relative to it."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("(file)", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("(file)", f"not UTF-8 text: {exc.reason}")]) from None
    return parse_config(text, source=str(path), base_dir=path.resolve().parent)


def load_or_complain(path: str | Path, *, err: TextIO | None = None) -> Config | None:
    """For a command: the config, or None after printing why it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"sipacd: {exc}", file=err or sys.stderr)
        return None


def demo_home() -> Path:
    """Where the embedded configuration keeps its data: $SIPACD_DEMO_HOME, else
    $XDG_CACHE_HOME/sipacd, else ~/.cache/sipacd.  Never the current directory:
    a demo started in a clone would leave an untracked folder there."""
    if os.environ.get("SIPACD_DEMO_HOME"):
        return Path(os.environ["SIPACD_DEMO_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sipacd"


def load_default_config(base_dir: str | Path | None = None) -> Config:
    """The embedded demo configuration; its relative paths (the data folder)
    are relative to ``base_dir``, by default :func:`demo_home`."""
    resource = importlib.resources.files("sipagent.config").joinpath(DEFAULT_CONFIG_RESOURCE)
    return parse_config(resource.read_text(encoding="utf-8"),
                        source=f"<embedded {DEFAULT_CONFIG_RESOURCE}>",
                        base_dir=demo_home() if base_dir is None else base_dir)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def parse_config(text: str, source: str = "<string>", *, base_dir: str | Path | None = None) -> Config:
    """Validate config text; ``base_dir`` (default: cwd) anchors relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib (3.11) only puts the position into the message text.
        message = str(exc)
        m = _TOML_POSITION.search(message)
        line, column = (int(m[1]), int(m[2])) if m else (None, None)
        message = _TOML_POSITION.sub("", message)
        key = f"line {line}" if line else "(file)"
        raise ConfigError(source, [ConfigProblem(key, f"TOML syntax error: {message}")],
                          line=line, column=column) from None
    return config_from_dict(data, source, base_dir=base_dir)


def config_from_dict(data: dict[str, Any], source: str = "<dict>", *,
                     base_dir: str | Path | None = None) -> Config:
    """Validate an already parsed TOML document (what tests and tools build)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        return Config.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None


# --- error rendering --------------------------------------------------------

def _problems(exc: ValidationError) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigProblems):
            problems += [ConfigProblem(dotted(loc + sub), msg) for sub, msg in cause.problems]
        elif loc and loc[-1] == "[key]":
            problems.append(ConfigProblem(dotted(loc[:-1]), _strip_prefix(error["msg"])))
        else:
            problems.append(ConfigProblem(dotted(loc), _describe(error, loc)))
    return problems


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(loc: tuple[str | int, ...]) -> str:
    """``('routes', 0, 'flow')`` -> ``routes[0].flow``, quoting keys TOML would quote."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += ("." if out else "") + key
    return out or "(top level)"


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "true or false", "dict_type": "a table", "model_type": "a table",
    "model_attributes_type": "a table", "tuple_type": "an array", "list_type": "an array",
    "path_type": "a path string",
}


def _describe(error: dict[str, Any], loc: tuple[str | int, ...]) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return "required key missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind in _EXPECTED:
        hint = ""
        if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = f' (quote it: "{value}")'
        elif kind in ("dict_type", "model_type") and isinstance(value, list):
            hint = f" (write [{dotted(loc)}.<name>] tables, not [[{dotted(loc)}]])"
        return f"wrong type: expected {_EXPECTED[kind]}, got {_toml_type(value)} {value!r}{hint}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"must be {bounds[kind]} {limit} (got {value!r})"
    if kind == "literal_error":
        return f"bad value {value!r}: must be one of {ctx['expected']}"
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        unit = "characters" if kind == "string_too_short" else "entries"
        return "must not be empty" if least == 1 else f"must have at least {least} {unit}"
    if kind == "value_error":
        return _strip_prefix(error["msg"])  # our validators quote the value themselves
    if kind == "string_pattern_mismatch":
        return f"bad value {value!r}: must match {ctx['pattern']}"
    return f"bad value {value!r}: {_strip_prefix(error['msg'])}"


def _strip_prefix(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    key = loc[-1]
    known = _keys_of(loc[:-1])
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}"


def _keys_of(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the table at ``loc``, found by walking the model types."""
    node: Any = Config
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = field.annotation
        elif typing.get_origin(node) in (dict, tuple):
            args = typing.get_args(node)
            node = args[-1] if typing.get_origin(node) is dict else args[0]
        else:
            return []
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(node: Any) -> Any:
    while True:
        origin = typing.get_origin(node)
        if origin is typing.Annotated:
            node = typing.get_args(node)[0]
        elif origin in (typing.Union, types.UnionType):
            node = next(a for a in typing.get_args(node) if a is not type(None))
        else:
            return node
