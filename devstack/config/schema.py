"""The JSON Schema of devstack.toml, generated from the models, for editors (Taplo / Even Better TOML).

The models' ``mode="before"`` validators accept more than their types say (a command as one string,
numbers in ``[env]``, ``"INFO"`` as a log level); the schema is widened to match, so an editor never
flags what devstack accepts.
"""
from __future__ import annotations

from typing import Any

from .models import LOGLEVELS, Config

__all__ = ["config_schema", "SCHEMA_ID"]

SCHEMA_ID = "devstack.schema.json"
INTERNAL = ("root", "path", "source")  # set by the loader, never written in the file
ONE_STRING_OR_LIST = ("command", "args", "queues", "depends_on", "watch", "watch_ignore", "watch_extensions")
ENV_VALUE = {"type": ["string", "number", "boolean"]}


def config_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    for key in INTERNAL:
        schema["properties"].pop(key, None)
    schema["required"] = []  # every table has defaults; rules.py checks what a stack needs
    schema["title"] = "devstack.toml"
    schema["description"] = "devstack's configuration (also [tool.devstack] in pyproject.toml)."
    _widen(schema)
    return schema


def _widen(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _widen(item)
        return
    if not isinstance(node, dict):
        return
    for name, prop in node.get("properties", {}).items():
        if name in ONE_STRING_OR_LIST:
            node["properties"][name] = {"anyOf": [_without_title(prop), {"type": "string"}], "title": prop.get("title")}
        elif name == "env":
            prop["additionalProperties"] = ENV_VALUE
        elif name == "loglevel":
            prop.pop("enum", None)
            prop["enum"] = [c for level in LOGLEVELS for c in (level, level.upper(), level.capitalize())]
    for value in node.values():
        _widen(value)


def _without_title(prop: dict) -> dict:
    return {k: v for k, v in prop.items() if k not in ("title", "default")}
