"""devstack: run a Flask + Celery + Redis app locally with one command."""
__version__ = "0.1.0"
