"""Declarative REST sources: endpoints, records paths, pagination and push-down from config.

See :mod:`patchbay.connectors.rest._connector` for the behaviour, ``_spec`` for the config and
``_paginators`` for the pagination styles.
"""

from ._connector import RestConnector
from ._spec import Origin, RestSettings

__all__ = ["Origin", "RestConnector", "RestSettings"]
