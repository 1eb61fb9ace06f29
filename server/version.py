"""The version: of the published contracts (the OpenAPI document's ``info.version``, the
release directory in contracts/released/) and of the package (setup.cfg reads it from here),
so the two cannot disagree. Raise it to release (docs/contracts.md)."""

VERSION = "2.1.0"
