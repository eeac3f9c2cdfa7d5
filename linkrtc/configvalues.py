# -*- test-case-name: linkrtc.test.test_config -*-
"""
The error of a bad configuration value, L{ConfigError}, and the checks of
plain values (seconds, counts, port ranges) that the options
(L{linkrtc.config}) and the trunk tables (L{linkrtc.trunkconfig}) share.
Each raises L{ConfigError} with one line naming the key.
"""

import math

from linkrtc.error import LinkRTCError


class ConfigError(LinkRTCError):
    """A configuration value is invalid; the message names the key."""



def parseRTPPorts(value):
    """
    Parse C{"LOW-HIGH"} (or a 2-item list) into C{(low, high)}.

    @raise ConfigError: when malformed or outside 1024..65535.
    """
    try:
        if isinstance(value, str):
            low, high = (int(v) for v in value.split("-", 1))
        else:
            low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"rtp-ports: expected LOW-HIGH, got {value!r}")
    if low > high:
        raise ConfigError(f"rtp-ports: low {low} > high {high} (give LOW-HIGH)")
    if not 1024 <= low <= high <= 65535:
        raise ConfigError(f"rtp-ports: range {low}-{high} outside 1024-65535")
    return (low, high)


def _positive(key, value):
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    if not math.isfinite(number):
        raise ConfigError(f"{key}: expected a finite number of seconds, got {value!r}")
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def _count(key, value):
    """@return: C{value} as an C{int} >= 1. @raise ConfigError: otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if number < 1 or (isinstance(value, float) and value != number):
        raise ConfigError(f"{key}: expected a whole number of at least 1, got {value!r}")
    return number


def _nonNegative(key, value):
    """@return: C{value} as seconds (C{float}) >= 0. @raise ConfigError: otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    if not number >= 0 or number == float("inf"):
        raise ConfigError(f"{key}: must be 0 or more seconds, got {value!r}")
    return number


def _countOrNone(key, value):
    """A non-negative whole number; 0 (or none) means no limit: C{None}."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if isinstance(value, bool) or isinstance(value, float) or number < 0:
        raise ConfigError(f"{key}: expected a whole number >= 0, got {value!r}")
    return number or None
