# -*- test-case-name: linkrtc.sip.test.test_transaction -*-
"""
SIP transaction timer values (RFC 3261 §17, Table 4 of Appendix A; RFC 6026 §8).

All values are seconds (C{float}). Only T1, T2, T4 and TD are configured; every
other timer is derived from them, so tests and operators shrink or stretch
them all at once.
"""

from dataclasses import dataclass

__all__ = ["TimerConfig"]


@dataclass(frozen=True)
class TimerConfig:
    """
    The base timer values and the timers A-M derived from them.

    @ivar T1: RTT estimate, seconds (RFC 3261 default 0.5).
    @ivar T2: the longest retransmit interval for non-INVITE requests and
        INVITE responses, seconds (default 4).
    @ivar T4: the longest time a message stays in the network, seconds
        (default 5).
    @ivar TD: Timer D for unreliable transports, seconds; RFC 3261 §17.1.1.2
        asks for at least 32.
    @ivar tryingDelay: seconds the INVITE server transaction waits for the
        TU's first provisional response before it sends C{100 Trying} itself
        (RFC 3261 §17.2.1 "200 ms"); C{0} sends 100 Trying at once, before
        the TU sees the INVITE; C{None} never sends it (the TU does).

    @raise ValueError: if a value is not positive or T2 < T1.
    """

    T1: float = 0.5
    T2: float = 4.0
    T4: float = 5.0
    TD: float = 32.0
    tryingDelay: "float | None" = 0.2

    def __post_init__(self):
        if self.T1 <= 0 or self.T2 <= 0 or self.T4 <= 0 or self.TD < 0:
            raise ValueError("timer values must be positive")
        if self.T2 < self.T1:
            raise ValueError("T2 must not be smaller than T1")
        if self.tryingDelay is not None and self.tryingDelay < 0:
            raise ValueError("tryingDelay must be None or >= 0")

    # -- INVITE client (§17.1.1, RFC 6026 §8.4) --------------------------

    @property
    def A(self):
        """First INVITE retransmit interval (unreliable only); doubles each time, uncapped."""
        return self.T1

    @property
    def B(self):
        """INVITE client transaction timeout in Calling: 64*T1."""
        return 64 * self.T1

    def D(self, reliable):
        """Wait in Completed for response retransmissions: TD (>= 32 s) or 0 when reliable."""
        return 0.0 if reliable else self.TD

    @property
    def M(self):
        """RFC 6026 Accepted state of the INVITE client transaction: 64*T1."""
        return 64 * self.T1

    # -- non-INVITE client (§17.1.2) --------------------------------------

    @property
    def E(self):
        """First non-INVITE retransmit interval (unreliable only); doubles, capped at T2."""
        return self.T1

    @property
    def F(self):
        """Non-INVITE client transaction timeout: 64*T1."""
        return 64 * self.T1

    def K(self, reliable):
        """Wait in Completed for response retransmissions: T4 or 0 when reliable."""
        return 0.0 if reliable else self.T4

    # -- INVITE server (§17.2.1, RFC 6026 §8.7) ---------------------------

    @property
    def G(self):
        """First final-response retransmit interval (unreliable only); doubles, capped at T2."""
        return self.T1

    @property
    def H(self):
        """Wait for the ACK of a 3xx-6xx: 64*T1."""
        return 64 * self.T1

    def I(self, reliable):  # noqa: E743 - the RFC's name
        """Wait in Confirmed for ACK retransmissions: T4 or 0 when reliable."""
        return 0.0 if reliable else self.T4

    @property
    def L(self):
        """RFC 6026 Accepted state of the INVITE server transaction: 64*T1."""
        return 64 * self.T1

    # -- non-INVITE server (§17.2.2) --------------------------------------

    def J(self, reliable):
        """Wait in Completed for request retransmissions: 64*T1 or 0 when reliable."""
        return 0.0 if reliable else 64 * self.T1

    # -- helpers -----------------------------------------------------------

    def nextInterval(self, interval, capped=True):
        """
        The retransmit interval after C{interval}: twice as long, capped at
        T2 when C{capped} (Timers E and G), not capped for Timer A.
        """
        interval = interval * 2
        if capped:
            interval = min(interval, self.T2)
        return interval
