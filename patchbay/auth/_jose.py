"""authlib's JOSE implementation, imported once.

``authlib.jose`` announces its own deprecation (in favour of ``joserfc``) with a warning at import
time; that warning is about authlib's roadmap, not about how patchbay uses it, so it is silenced
for exactly that import and nothing else.
"""

from __future__ import annotations

import warnings

from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JoseError, JsonWebKey, jwt  # type: ignore[import-untyped]

__all__ = ["JoseError", "JsonWebKey", "jwt"]
