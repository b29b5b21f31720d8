"""Errors raised for bad settings, before any work starts."""


class ConfigError(ValueError):
    """A setting in params.yaml (or an override) is missing or invalid; the message names the key."""
