"""The Textual front-end of devstack. Talks to the engine only through devstack.engine."""
