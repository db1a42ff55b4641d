"""/api/v1/permits: enterprise e-permits (design/permits.md)."""

from miniapp_api.permits import applications, enterprises, ledger, oversight  # noqa: F401
from miniapp_api.permits.blueprint import bp

__all__ = ["bp"]
