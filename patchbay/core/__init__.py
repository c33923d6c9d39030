"""The domain: entities, normalisers, mapping, filters, the connector contract and registries.

Nothing here imports the rest of patchbay; implementations are found through the registries.
"""
