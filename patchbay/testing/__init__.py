"""The conformance suite every connector passes, ours or a plugin's.

Subclass :class:`ConnectorConformance` in a test module and give it a ``case`` fixture that
describes a live source; pytest then runs the whole suite against it::

    import pytest
    from patchbay.testing import ConformanceCase, ConnectorConformance

    class TestMyConnector(ConnectorConformance):
        @pytest.fixture
        def case(self, tmp_path):
            return ConformanceCase(
                config={"version": 1, "sources": {"crm": {"connector": "mycrm", ...}}},
                source="crm",
                entity="contact",
                quarantined=1,          # bad rows the source holds, which must be kept aside
            )

The suite needs only pytest (no async plugin): it drives the source through ``SyncHub``.
"""

from patchbay.testing._suite import ConformanceCase, ConnectorConformance

__all__ = ["ConformanceCase", "ConnectorConformance"]
