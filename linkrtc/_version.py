"""The version of LinkRTC; the single source for setup.cfg."""

__version__ = "0.1.0"

#: What LinkRTC calls itself in C{Server} and C{User-Agent} headers (SIP,
#: HTTP, webhook) unless C{--server-header} says otherwise: no version, so
#: that a scanner learns nothing it could match against advisories.
PRODUCT = "LinkRTC"
