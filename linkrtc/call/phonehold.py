# -*- test-case-name: linkrtc.call.test.test_sipphones,linkrtc.call.test.test_wsphones -*-
"""
A SIP phone's hold passed on to the call engine as the client protocol's
C{hold} / C{unhold} (docs/signalling.rst), what a browser's hold button
sends: shared by the phones on UDP/TCP/TLS (L{linkrtc.call.sipphones})
and those over WebSocket (L{linkrtc.call.wsphones}).

The engine refuses a C{hold} with C{error} 409 while a re-INVITE (either
side's) is under way; the phone's hold is then asked again
L{HOLD_RETRY_DELAY} seconds later, at most L{HOLD_RETRIES} times in a
row (a C{state} C{hold} / C{unhold} from the engine starts the count
again).
"""

__all__ = ["HOLD_RETRIES", "HOLD_RETRY_DELAY", "PhoneHold"]

#: Seconds before a phone's hold refused with 409 is asked again.
HOLD_RETRY_DELAY = 1.0

#: Times in a row a phone's hold refused with 409 is asked again.
HOLD_RETRIES = 5


class PhoneHold:
    """
    One answered phone's hold state as the engine is told it.

    @ivar held: C{True} while the phone's last offer put the call on hold.
    """

    def __init__(self, clock, tell, live):
        """
        @param clock: an C{IReactorTime} (the retries).
        @param tell: called with the client message (C{dict}:
            C{{"type": "hold"}} or C{{"type": "unhold"}}) for the engine.
        @param live: called without arguments: C{True} while the phone's
            call is answered and not over (nothing is asked otherwise).
        """
        self._clock = clock
        self._tell = tell
        self._live = live
        self.held = False
        self._retry = None
        self._retries = 0

    def offered(self, hold):
        """
        The phone's offer was answered; C{hold} (C{bool}) says whether it
        holds the call. A change is told to the engine.
        """
        hold = bool(hold)
        if hold != self.held and self._live():
            self.held = hold
            self._retries = 0
            self._askHold()

    def applied(self):
        """The engine's C{state} C{hold} / C{unhold}: the retries count from zero."""
        self._retries = 0

    def refused(self):
        """The engine's C{error} 409: ask again later (bounded)."""
        if self._retry is not None or not self._live() or self._retries >= HOLD_RETRIES:
            return
        self._retries += 1
        self._retry = self._clock.callLater(HOLD_RETRY_DELAY, self._askHold)

    def stop(self):
        """The call is over: no retry is left pending."""
        retry, self._retry = self._retry, None
        if retry is not None and retry.active():
            retry.cancel()

    def _askHold(self):
        self._retry = None
        if self._live():
            self._tell({"type": "hold" if self.held else "unhold"})
