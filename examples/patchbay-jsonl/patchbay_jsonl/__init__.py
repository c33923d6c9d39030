"""A patchbay connector for JSON Lines exports, shipped as its own package.

Installing the package is all it takes: it registers ``jsonl`` in the entry point group
``patchbay.connectors``, and a source with ``connector: jsonl`` then reads it.
"""

from patchbay_jsonl._connector import JsonLinesConnector, JsonLinesSettings

__all__ = ["JsonLinesConnector", "JsonLinesSettings"]
