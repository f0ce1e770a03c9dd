"""Celery wiring for the demo: the Flask documentation's ``celery_init_app`` plus Dify's ``FlaskTask``."""
from __future__ import annotations

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Build the Celery app from ``app.config["CELERY"]``; every task runs inside ``app.app_context()``."""

    class FlaskTask(Task):
        # Dify (extensions/ext_celery.py) and the Flask docs: the task body sees current_app, config, etc.
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
