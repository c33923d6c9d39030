"""Salesforce: the standard objects over SOQL and the REST API, as a preset.

See :mod:`patchbay.connectors.salesforce._connector` for the behaviour, ``_soql`` for how values
become SOQL, ``_spec`` for the config and ``_preset`` for the default mappings.
"""

from ._connector import ApiUsage, SalesforceConnector
from ._soql import contains_pattern, like_literal, literal
from ._spec import LinesOrigin, Origin, SalesforceSettings

__all__ = [
    "ApiUsage",
    "LinesOrigin",
    "Origin",
    "SalesforceConnector",
    "SalesforceSettings",
    "contains_pattern",
    "like_literal",
    "literal",
]
