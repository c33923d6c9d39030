"""HubSpot CRM (v3 objects, search and v4 associations) with preset entity bindings.

See :mod:`patchbay.connectors.hubspot._connector` for the behaviour, ``_spec`` for the config,
``_search`` for what is pushed down and how long reads are split, ``_presets`` for the
ready-made bindings.
"""

from ._connector import HubSpotConnector
from ._presets import PRESETS
from ._spec import HubSpotSettings, Origin

__all__ = ["PRESETS", "HubSpotConnector", "HubSpotSettings", "Origin"]
