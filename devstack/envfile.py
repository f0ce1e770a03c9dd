"""Env files (dotenv syntax), ``${VAR}`` interpolation and the environment each service gets.

Precedence of :func:`compose_env`, lowest first::

    env file (.env)  <  real environment  <  devstack's Redis wiring  <  [env]  <  [<service>] env

Values from the env file, ``[env]`` and the service ``env`` are interpolated (``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``$$`` for a literal ``$``) against everything merged
before them, so ``FLASK_CELERY__broker_url = "${CELERY_BROKER_URL}"`` picks up the wiring value.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from devstack.config import ConfigError

__all__ = ["parse_env_file", "interpolate", "resolve_env_file", "compose_env"]

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _err(path: Path, lineno: int | None, message: str) -> ConfigError:
    where = f"{path}: line {lineno}" if lineno else str(path)
    return ConfigError(f"{where}: {message}", path=path)


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file into a dict. Values are returned raw (not interpolated; compose_env does).

    Inside single quotes (and for ``\\$`` in double quotes) a ``$`` that interpolation would
    consume is returned doubled (``$$``), so the value stays literal after :func:`interpolate`.

    Supports ``KEY=VALUE``, ``export KEY=VALUE``, ``#`` comment lines, blank lines, single quotes
    (literal), double quotes (``\\n``, ``\\t``, ``\\"``, ``\\\\`` escapes; may span lines) and
    `` # comment`` after unquoted values. Raises :class:`ConfigError` naming file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _err(path, None, "env file not found. Fix: create it or change [project] env_file.") from None
    except UnicodeDecodeError as exc:
        raise _err(path, None, f"env file is not UTF-8 text ({exc.reason}). Fix: save it as UTF-8.") from None
    except OSError as exc:
        raise _err(path, None, f"cannot read the env file ({exc.strerror or exc}). Fix: check its permissions or change [project] env_file.") from None

    lines = text.splitlines()
    result: dict[str, str] = {}
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip()
        if "=" not in line:
            raise _err(path, lineno, f"expected KEY=VALUE, got {line[:60]!r}. Fix: add '=' and a value, or start the line with '#' to comment it out.")
        key, _, rest = line.partition("=")
        key = key.strip()
        if not _KEY_RE.match(key):
            raise _err(path, lineno, f"invalid variable name {key[:60]!r}. Fix: use letters, digits and underscores, not starting with a digit.")
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            value_chars: list[str] = []
            start_line = lineno
            while True:
                j = 0
                closed = False
                while j < len(body):
                    ch = body[j]
                    if quote == '"' and ch == "\\" and j + 1 < len(body):
                        nxt = body[j + 1]
                        value_chars.append(_DQ_ESCAPES.get(nxt, "\\" + nxt))
                        j += 2
                        continue
                    if ch == quote:
                        closed = True
                        break
                    value_chars.append(ch)
                    j += 1
                if closed:
                    trailing = body[j + 1:].strip()
                    if trailing and not trailing.startswith("#"):
                        raise _err(path, lineno, f"unexpected text after the closing quote: {trailing[:40]!r}. Fix: put the whole value inside the quotes.")
                    break
                if i >= len(lines):
                    raise _err(path, start_line, f"the {quote} quote opened here is never closed. Fix: add the closing {quote}.")
                value_chars.append("\n")
                body = lines[i]
                i += 1
                lineno = i
            value = "".join(value_chars)
            if quote == "'":
                # single quotes are literal: protect "${" and "$$" from interpolation
                value = re.sub(r"\$(?=[${])", "$$", value)
        else:
            value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
        result[key] = value
    return result


def _find_close(s: str, start: int) -> int:
    """Index of the '}' closing a '${' whose body starts at ``start``; -1 if none."""
    depth = 1
    j = start
    while j < len(s):
        if s.startswith("${", j):
            depth += 1
            j += 2
            continue
        if s[j] == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def interpolate(value: str, mapping: Mapping[str, str]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset) and ``$$``.

    Unknown ``${VAR}`` become "". Substituted values are not expanded again, so there are no loops.
    Anything else (a lone ``$``, ``$VAR``, an unclosed ``${``) is kept literally.
    """
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if value.startswith("${", i):
            end = _find_close(value, i + 2)
            m = _NAME_RE.match(value, i + 2)
            if end != -1 and m:
                name = m.group(0)
                tail = value[m.end():end]
                if tail == "":
                    out.append(mapping.get(name, ""))
                    i = end + 1
                    continue
                if tail.startswith(":-") or tail.startswith("-"):
                    default = tail[2:] if tail.startswith(":-") else tail[1:]
                    current = mapping.get(name)
                    use_default = (current is None) or (tail.startswith(":-") and current == "")
                    out.append(interpolate(default, mapping) if use_default else current)  # type: ignore[arg-type]
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def resolve_env_file(raw: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The env file's values interpolated: each may reference earlier lines of the file and the real
    environment, which wins over the file as it does in :func:`compose_env`.
    """
    return _interpolate_layer(raw, below={}, above=environ)


def _interpolate_layer(
    values: Mapping[str, str], *, below: Mapping[str, str], above: Mapping[str, str]
) -> dict[str, str]:
    """``values`` interpolated in order, each against ``below``, the values before it, then ``above``
    (later names win): a layer sees what it overrides and its own earlier lines.
    """
    out: dict[str, str] = {}
    for k, v in values.items():
        out[k] = interpolate(v, {**below, **out, **above})
    return out


def compose_env(
    *,
    environ: Mapping[str, str],
    env_file: Mapping[str, str],
    wiring: Mapping[str, str],
    global_env: Mapping[str, str],
    service_env: Mapping[str, str],
) -> dict[str, str]:
    """The environment of one service. Precedence, lowest first:

    env_file < environ < wiring < global_env ([env]) < service_env. env-file values may reference
    the real environment and earlier lines of the file; [env] and service values may reference
    everything below them. ``PYTHONUNBUFFERED=1`` is always set.
    """
    merged: dict[str, str] = {**resolve_env_file(env_file, environ), **environ, **wiring}
    for layer in (global_env, service_env):
        merged.update(_interpolate_layer(layer, below=merged, above={}))
    merged["PYTHONUNBUFFERED"] = "1"
    return merged
