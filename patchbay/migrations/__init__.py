"""Alembic migrations of patchbay's ``state`` database, run by ``patchbay.state.upgrade``."""
