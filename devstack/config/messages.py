"""Turning pydantic validation errors into :class:`ConfigError` messages users can act on.

Each message names the file, the table and key, what was wrong, and the fix (the nearest valid
key or value when there is one); secrets are never echoed.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .models import SECRET_KEYS, Config

__all__ = ["Where", "raise_validation"]


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, dict):
        s = "a table"
    elif isinstance(v, (str, int, float, list)):
        try:
            s = json.dumps(v)
        except (TypeError, ValueError):
            s = repr(v)
    else:
        s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    origin = get_origin(ann)
    if origin is Union or (origin is not None and str(origin) == "types.UnionType") or type(ann).__name__ == "UnionType":
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _expected(model: type[BaseModel] | None, key: str | None) -> tuple[str, str | None]:
    """Human description of what ``key`` accepts, and an example value in TOML syntax."""
    if model is None or key is None or key not in model.model_fields:
        return "a valid value", None
    field = model.model_fields[key]
    ann, _ = _unwrap_optional(field.annotation)
    lo = hi = gt = None
    for m in field.metadata:
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
        gt = getattr(m, "gt", gt)
    default = field.default if field.default is not None and not callable(field.default) else None
    origin = get_origin(ann)
    if origin is Literal:
        opts = get_args(ann)
        return "one of " + ", ".join(json.dumps(o) for o in opts), json.dumps(default if default is not None else opts[0])
    if ann is bool:
        return "true or false", "true" if default in (None, True) else "false"
    if ann is int:
        if lo is not None and hi is not None:
            desc = f"an integer between {lo} and {hi}"
        elif lo is not None:
            desc = f"an integer of at least {lo}"
        else:
            desc = "an integer"
        return desc, str(default if default is not None else (lo if lo is not None else 1))
    if ann is float:
        desc = "a number greater than 0" if gt == 0 else "a number"
        return desc, str(default if default is not None else 1)
    if ann is str:
        return "a string", json.dumps(default if default is not None else "...")
    if ann is Path:
        return "a path (a string)", '"..."'
    if origin is list:
        if key in ("command", "args"):
            return "a list of strings or a single command-line string", '["python", "-m", "app"]'
        if key in ("queues", "depends_on"):
            return "a list of strings or a comma-separated string", '["a", "b"]'
        return "a list of strings", '["..."]'
    if origin is dict:
        return "a table of string values", None
    return "a valid value", None


def _locate(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, list[str], list[Any]]:
    """Split a pydantic error location into (model of the table, table path, key path)."""
    model: type[BaseModel] | None = Config
    table: list[str] = []
    i = 0
    while i < len(loc) and model is not None:
        name = loc[i]
        if not isinstance(name, str) or name not in model.model_fields:
            break
        ann, _ = _unwrap_optional(model.model_fields[name].annotation)
        if _is_model(ann):
            table.append(name)
            model = ann
            i += 1
            continue
        if get_origin(ann) is dict and _is_model(get_args(ann)[1]) and i + 1 < len(loc):
            table += [name, str(loc[i + 1])]
            model = get_args(ann)[1]
            i += 2
            continue
        break
    rest = list(loc[i:])
    if model is Config and rest:
        # a top-level table itself ([env] KEY, or "redis = 5")
        table = [str(rest[0])]
        rest = rest[1:]
        model = None
    return model, table, rest


class Where:
    """Formats the 'file: [table] key:' prefix of messages and builds the :class:`ConfigError`."""

    def __init__(self, path: Path | None, source: str, cwd: Path):
        self.path = path
        self.source = source
        if path is None:
            self.file = "bundled demo config"
        else:
            try:
                self.file = str(path.resolve().relative_to(cwd.resolve()))
            except ValueError:
                self.file = str(path)

    def table(self, parts: list[str]) -> str:
        name = ".".join(parts)
        if self.source == "pyproject.toml":
            name = "tool.devstack" + ("." + name if name else "")
        return f"[{name}]" if name else "(top level)"

    def error(self, table: list[str], key: str | None, message: str) -> ConfigError:
        prefix = f"{self.file}: {self.table(table)}"
        if key:
            prefix += f" {key}"
        return ConfigError(f"{prefix}: {message}", path=self.path, key=key)


def _key_text(rest: list[Any]) -> str | None:
    if not rest:
        return None
    out = ""
    for part in rest:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _visible_fields(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if not (model is Config and k in ("root", "path", "source"))]


def _translate(err: dict[str, Any], where: Where) -> ConfigError:
    model, table, rest = _locate(tuple(err["loc"]))
    key = _key_text(rest)
    top_key = rest[0] if rest and isinstance(rest[0], str) else None
    secret = top_key in SECRET_KEYS
    typ = err["type"]
    raw = err.get("input")
    got = "a value (hidden)" if secret else _fmt_value(raw)
    if top_key == "url" and isinstance(raw, str):
        got = _fmt_value(re.sub(r"//[^@/]*@", "//***@", raw))

    if typ == "extra_forbidden" and model is not None and len(rest) == 1:
        valid = _visible_fields(model)
        close = difflib.get_close_matches(str(rest[0]), valid, n=1, cutoff=0.6)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        return where.error(table, key, f"unknown key.{hint} Valid keys: {', '.join(valid)}. Fix: rename or remove it.")
    if typ == "missing":
        desc, example = _expected(model, top_key)
        ex = f" {top_key} = {example}" if example else ""
        return where.error(table, key, f"required key is missing. Fix: add{ex or ' it'} ({desc}).")
    if typ == "value_error":
        msg = str(err.get("msg", ""))
        msg = msg.removeprefix("Value error, ")
        if secret:
            msg = "invalid value"
        return where.error(table, key, msg if msg.endswith(".") else msg + ".")
    if typ in ("model_type", "model_attributes_type", "dict_type") and not rest:
        return where.error(table, None, f"expected a table, got {got}. Fix: write it as a [{'.'.join(table)}] table of key = value lines.")
    if model is None and table and table[0] == "env" or (model is not None and top_key == "env" and len(rest) >= 2):
        return where.error(table, key, f"expected a string, got {got}. Fix: write the value in quotes, e.g. {rest[-1]} = \"...\".")
    if len(rest) > 1 and isinstance(rest[1], int):
        return where.error(table, key, f"expected a string, got {got}. Fix: write every list item in quotes.")
    desc, example = _expected(model, top_key)
    fix = f"Fix: write {top_key} = {example}." if example and top_key else "Fix: correct the value."
    if typ == "literal_error" and isinstance(raw, str) and model is not None and top_key:
        ann, _ = _unwrap_optional(model.model_fields[top_key].annotation)
        close = difflib.get_close_matches(raw, [str(o) for o in get_args(ann)], n=1, cutoff=0.5)
        if close:
            fix = f'Did you mean "{close[0]}"? Fix: write {top_key} = "{close[0]}".'
    return where.error(table, key, f"expected {desc}, got {got}. {fix}")


def raise_validation(exc: ValidationError, where: Where) -> NoReturn:
    errors = exc.errors(include_url=False)
    first = _translate(errors[0], where)
    if len(errors) > 1:
        more = len(errors) - 1
        first = ConfigError(
            f"{first} ({more} more problem{'s' if more > 1 else ''} in this file; fix this one and run again.)",
            path=first.path,
            key=first.key,
        )
    raise first from None
