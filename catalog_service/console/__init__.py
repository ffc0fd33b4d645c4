"""The operator's web console: server-rendered pages on the catalog's HTTP listener."""

from catalog_service.console.routes import Console

__all__ = ["Console"]
