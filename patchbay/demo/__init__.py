"""The demo: generated legacy sources and the config that maps them (``patchbay demo``)."""
