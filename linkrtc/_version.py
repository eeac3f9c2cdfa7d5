"""The version of LinkRTC; the single source for setup.cfg."""

__version__ = "0.1.0"
