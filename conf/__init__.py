"""Configuration: defaults, per-environment files, environment overrides."""

from conf.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
