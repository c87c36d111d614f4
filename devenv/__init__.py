"""Local servers for development and tests: PostgreSQL and the bundled engine.

None of this is part of the gateway. It exists so that `make run` and `make test`
work on a machine with nothing running.
"""
