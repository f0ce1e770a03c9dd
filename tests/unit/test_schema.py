"""The JSON Schema of devstack.toml: generated from the models, shipped, and valid for the example config."""
from __future__ import annotations

import json
import tomllib

import jsonschema
import pytest
from click.testing import CliRunner

from devstack.cli import main
from devstack.config import config_schema
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "devstack.example.toml"
SHIPPED = ROOT / "devstack" / "devstack.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_example_config_validates_against_the_schema():
    errors = [f"{list(e.path)}: {e.message}" for e in validator().iter_errors(tomllib.loads(EXAMPLE.read_text()))]
    assert errors == []


def test_the_example_points_editors_at_the_shipped_schema():
    first = EXAMPLE.read_text().splitlines()[0]
    assert first.startswith("#:schema ")
    assert (EXAMPLE.parent / first.split(None, 1)[1]).resolve() == SHIPPED.resolve()


def test_the_shipped_schema_is_the_one_the_models_generate():
    assert json.loads(SHIPPED.read_text()) == config_schema(), \
        "regenerate it: devstack schema > devstack/devstack.schema.json"


def test_devstack_schema_prints_it():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == config_schema()


@pytest.mark.parametrize("doc, where", [
    ({"worker": {"concurency": 2}}, "concurency"),           # a typo in a key
    ({"redis": {"port": "6379"}}, "6379"),                   # a string where a number goes
    ({"worker": {"pool": "fork"}}, "fork"),                  # not one of the pools
    ({"process": {"migrate": {"oneshot": True}}}, "command"),  # a process needs its command
])
def test_the_schema_flags_what_devstack_rejects(doc, where):
    messages = " ".join(e.message for e in validator().iter_errors(doc))
    assert where in messages


def test_the_schema_accepts_the_short_forms_devstack_accepts():
    doc = {"worker": {"command": "celery -A app worker", "queues": "a,b", "loglevel": "INFO"},
           "env": {"WORKERS": 2, "DEBUG": True}, "api": {"depends_on": "migrate"},
           "process": {"migrate": {"command": "flask db upgrade", "oneshot": True}}}
    assert list(validator().iter_errors(doc)) == []
