"""The team server: a REST API (FastAPI) over the results store, with accounts, roles and problem details."""

from infersight.api.app import create_app

__all__ = ["create_app"]
