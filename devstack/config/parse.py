"""Validation of a parsed TOML table into a :class:`Config`: names first, then the models, then
the cross-table rules; every failure is a :class:`ConfigError`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .messages import Where, raise_validation
from .models import Config
from .rules import apply_rules, check_names

__all__ = ["parse_config"]


def parse_config(data: dict, *, root: Path, path: Path | None, source: str, cwd: Path) -> Config:
    """Validate the parsed TOML table ``data`` into a :class:`Config` (raises :class:`ConfigError`)."""
    root = Path(root).resolve()
    cwd = Path(cwd)
    where = Where(path, source, cwd)
    if not isinstance(data, dict):
        raise where.error([], None, "expected a table of settings. Fix: write the settings as TOML tables like [api].")
    check_names(data, where, path)

    beat_given = "beat" in data
    full: dict[str, Any] = {k: (dict(data[k]) if isinstance(data.get(k), dict) else data[k]) for k in data}
    for table in ("project", "redis", "api", "worker", "beat", "reload"):
        full.setdefault(table, {})
    full.update(root=root, path=path, source=source)
    try:
        cfg = Config.model_validate(full, context={"root": root})
    except ValidationError as exc:
        raise_validation(exc, where)
    apply_rules(cfg, where, beat_given=beat_given)
    return cfg
