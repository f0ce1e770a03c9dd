"""The demo Flask + Celery stack devstack runs when no devstack.toml is found.

See :mod:`devstack.demo.app` for how the pieces map to a real application (Dify).
Nothing is imported here so that ``celery -A devstack.demo.app:celery`` stays cheap.
"""
