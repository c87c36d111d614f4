"""The WSGI entry point that gunicorn loads in each worker."""

from gateway.app import create_app

app = create_app()
