"""`devstack init` on three project shapes: the bundled demo, the Flask documentation's Celery example,
and a Dify-shaped tree. Each expected value is what a person would write for that project."""
from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from devstack.config import parse_config
from devstack.errors import DevstackError
from devstack.init_config import scan_project, write_config
from tests.conftest import ROOT


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


DIFY = {
    "api/app.py": "from app_factory import create_app\n\napp = create_app()\ncelery = app.extensions[\"celery\"]\n",
    "api/app_factory.py": "from dify_app import DifyApp\n\n\ndef create_app() -> DifyApp:\n    app = DifyApp(__name__)\n    return app\n",
    "api/extensions/ext_celery.py": (
        "from celery import Celery\n\n\ndef init_app(app):\n    celery_app = Celery(app.name)\n"
        "    beat_schedule = {}\n    celery_app.conf.update(beat_schedule=beat_schedule)\n"
        "    app.extensions[\"celery\"] = celery_app\n    return celery_app\n"),
    "api/dev/start-worker": (
        "#!/bin/bash\nset -x\nSCRIPT_DIR=\"$(dirname \"$(realpath \"$0\")\")\"\ncd \"$SCRIPT_DIR/..\"\n\n"
        "uv --directory api run \\\n  celery -A app.celery worker \\\n"
        "  -P gevent -c 1 --loglevel INFO -Q dataset,generation,mail,ops_trace\n"),
    "api/.env": "SECRET_KEY=x\n",
    "web/package.json": "{}\n",
}

FLASK_DOCS = {
    "pyproject.toml": "[project]\nname = \"flask-example-celery\"\n",
    "src/task_app/__init__.py": (
        "from celery import Celery, Task\nfrom flask import Flask\n\n\ndef create_app() -> Flask:\n"
        "    app = Flask(__name__)\n    celery_init_app(app)\n    return app\n\n\n"
        "def celery_init_app(app: Flask) -> Celery:\n    celery_app = Celery(app.name)\n"
        "    app.extensions[\"celery\"] = celery_app\n    return celery_app\n"),
    "src/task_app/tasks.py": "from celery import shared_task\n\n\n@shared_task(ignore_result=False)\ndef add(a, b):\n    return a + b\n",
    "make_celery.py": "from task_app import create_app\n\nflask_app = create_app()\ncelery_app = flask_app.extensions[\"celery\"]\n",
}


def found(scan) -> dict:
    keys = ("api_app", "api_cwd", "worker_app", "worker_cwd", "queues", "pool", "concurrency", "beat", "env_file")
    return {k: getattr(scan, k).value for k in keys if getattr(scan, k) is not None}


def test_a_dify_shaped_tree(tmp_path):
    scan = scan_project(tree(tmp_path, DIFY))
    assert found(scan) == {"api_app": "app:app", "api_cwd": "api", "worker_app": "app.celery", "worker_cwd": "api",
                           "queues": ["dataset", "generation", "mail", "ops_trace"], "pool": "gevent",
                           "concurrency": 1, "beat": True, "env_file": "api/.env"}
    assert "api/dev/start-worker" in scan.worker_app.why and not scan.worker_app.guess


def test_the_flask_documentation_example(tmp_path):
    scan = scan_project(tree(tmp_path, FLASK_DOCS))
    assert found(scan) == {"api_app": "task_app:create_app()", "api_cwd": "src", "worker_app": "make_celery:celery_app",
                           "worker_cwd": "."}
    assert "src/task_app/__init__.py" in scan.api_app.why


def test_the_bundled_demo(tmp_path):
    shutil.copytree(ROOT / "devstack" / "demo", tmp_path / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    scan = scan_project(tmp_path)
    assert found(scan) == {"api_app": "demo.app:app", "api_cwd": ".", "worker_app": "demo.app:celery",
                           "worker_cwd": ".", "beat": True}


@pytest.mark.parametrize("files", [DIFY, FLASK_DOCS])
def test_the_written_config_is_valid_and_says_why(tmp_path, files):
    target, scan = write_config(tree(tmp_path, files))
    text = target.read_text()
    assert "# found: " in text
    data = tomllib.loads(text)
    cfg = parse_config(data, root=tmp_path, path=target, source="devstack.toml", cwd=tmp_path)
    assert cfg.worker.app == scan.worker_app.value and cfg.api.app == scan.api_app.value


def test_init_never_overwrites(tmp_path):
    (tmp_path / "devstack.toml").write_text("# mine\n")
    with pytest.raises(DevstackError) as err:
        write_config(tmp_path)
    assert "never overwrites" in err.value.message
    assert (tmp_path / "devstack.toml").read_text() == "# mine\n"


def test_an_empty_folder_gets_a_config_that_says_what_is_missing(tmp_path):
    target, _ = write_config(tmp_path)
    text = target.read_text()
    assert "no Flask app found" in text and "no Celery app found" in text
    parse_config(tomllib.loads(text), root=tmp_path, path=target, source="devstack.toml", cwd=tmp_path)


def test_queues_named_in_task_decorators_and_calls(tmp_path):
    """Dify names each task's queue in its decorator: `@shared_task(queue="dataset")`; a worker started
    without those in -Q would never run them."""
    files = {
        "app.py": "from celery import Celery\n\ncelery = Celery('app')\n",
        "tasks/index.py": "from celery import shared_task\n\n\n@shared_task(queue='dataset')\ndef index(d):\n    pass\n",
        "tasks/mail.py": ("from celery import shared_task\n\n\n@shared_task(queue=\"mail\")\ndef send(to):\n    pass\n\n\n"
                          "def later():\n    send.apply_async(args=('x',), queue = 'mail_low')\n"),
        "tasks/plain.py": "from celery import shared_task\n\n\n@shared_task\ndef plain():\n    pass\n",
    }
    scan = scan_project(tree(tmp_path, files))
    # `plain` names no queue and no default queue is set: Celery sends it to `celery`
    assert scan.queues.value == ["celery", "dataset", "mail", "mail_low"] and scan.queues.guess
    assert "tasks/index.py" in scan.queues.why and "default queue of tasks that name none" in scan.queues.why


def test_a_default_queue_setting_replaces_celerys_default(tmp_path):
    files = {
        "app.py": ("from celery import Celery\n\ncelery = Celery('app')\n"
                   "celery.conf.update(task_default_queue=\"dataset\")\n"),
        "tasks/mail.py": "from celery import shared_task\n\n\n@shared_task(queue='mail')\ndef send(to):\n    pass\n",
        "config.py": "CELERY_TASK_DEFAULT_QUEUE = 'generation'\n",
    }
    scan = scan_project(tree(tmp_path, files))
    assert scan.queues.value == ["dataset", "generation", "mail"], scan.queues


def test_the_config_says_which_python_runs_the_app(tmp_path, monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    bare = tree(tmp_path / "bare", {"app.py": "from flask import Flask\n\napp = Flask(__name__)\n"})
    path, _ = write_config(bare)
    text = path.read_text()
    assert "no virtualenv found" in text and '# python = "/path/to/the/app/venv/bin/python"' in text
    assert "python" not in tomllib.loads(text)["project"]  # only a hint: the key stays commented out

    with_venv = tree(tmp_path / "with", {"app.py": "from flask import Flask\n\napp = Flask(__name__)\n",
                                         ".venv/bin/python": "", ".venv/pyvenv.cfg": "home = /usr/bin\n"})
    text = write_config(with_venv)[0].read_text()
    assert f"# found: the app runs with {with_venv / '.venv' / 'bin' / 'python'} (.venv in the project" in text
    assert "no virtualenv found" not in text
