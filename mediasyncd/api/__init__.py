"""The control API under the status server (SPEC §3.12): routes (one table, which the OpenAPI document
is made from), handlers, and the guard every request passes."""

from mediasyncd.api.dashboard import add_dashboard
from mediasyncd.api.errors import error
from mediasyncd.api.guard import guard, is_loopback_name
from mediasyncd.api.handlers import CONTROL_KEY, TOKEN_KEY, Control
from mediasyncd.api.routes import ROUTES, add_routes, document

__all__ = [
    "CONTROL_KEY",
    "ROUTES",
    "TOKEN_KEY",
    "Control",
    "add_dashboard",
    "add_routes",
    "document",
    "error",
    "guard",
    "is_loopback_name",
]
