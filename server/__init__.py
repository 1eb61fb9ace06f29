"""The framework: publishes every facade as SOAP 1.1, 1.2 and JSON REST through one dispatcher."""

from importlib import metadata

#: The distribution this code is installed as (setup.cfg's name).
DISTRIBUTION = "p2p-platform"


def package_version() -> str:
    """The installed distribution's version, or "unknown" when the code runs uninstalled."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
