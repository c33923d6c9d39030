"""Tests of the Tryton connector against a real Tryton server (see conftest.py).

A package, so that its conftest is imported as ``tryton.conftest`` and does not replace the
top-level ``conftest`` module other test modules import ``unavailable`` from.
"""
