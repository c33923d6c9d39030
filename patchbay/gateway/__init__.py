"""The REST gateway: the Hub over HTTP for non-Python consumers (``patchbay serve``).

``create_app(hub)`` builds the FastAPI app; ``authenticate(request)`` turns a request into the
``Principal`` (consumer, scopes, key id) it runs as, for any front door mounted beside it.
"""

from patchbay.gateway.app import GatewaySettings, app_from_env, create_app
from patchbay.gateway.auth import JwtSettings, Principal, authenticate
from patchbay.gateway.keys import ApiKey, ApiKeys

__all__ = [
    "ApiKey",
    "ApiKeys",
    "GatewaySettings",
    "JwtSettings",
    "Principal",
    "app_from_env",
    "authenticate",
    "create_app",
]
