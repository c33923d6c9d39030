"""Tests of the OData connector and its Business Central and SAP S/4HANA presets.

A package, so that its helper modules import as ``odata.<module>`` and its conftest does not
replace the top-level ``conftest`` module other test modules import ``unavailable`` from.
"""
