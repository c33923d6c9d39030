"""OData sources (v4 and v2), and the Business Central and SAP S/4HANA presets built on them.

See :mod:`patchbay.connectors.odata._connector` for reading and paging, ``_literals`` for how
filters and keys are written per version, ``_metadata`` for ``$metadata``, and ``_presets`` for
the vendor bindings.
"""

from ._connector import ODataConnector
from ._presets import (
    BusinessCentralConnector,
    BusinessCentralSettings,
    SapS4HanaConnector,
    SapS4HanaSettings,
)
from ._spec import LinesOrigin, ODataSettings, Origin

__all__ = [
    "BusinessCentralConnector",
    "BusinessCentralSettings",
    "LinesOrigin",
    "ODataConnector",
    "ODataSettings",
    "Origin",
    "SapS4HanaConnector",
    "SapS4HanaSettings",
]
