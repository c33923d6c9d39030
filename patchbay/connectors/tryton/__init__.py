"""Tryton ERP over JSON-RPC (logged in by the ``tryton_session`` auth scheme): ``search_read``
with domains, keyset paging on ``(last_modified_at, id)``, lines per batch, and preset bindings
for parties, sales, customer invoices and products. See ``_connector`` for the details."""

from ._connector import TrytonConnector
from ._spec import Origin, TrytonSettings

__all__ = ["Origin", "TrytonConnector", "TrytonSettings"]
