# -*- test-case-name: linkrtc.call.test.test_transfer -*-
"""
The "SIP leg" of a call whose far end is no SIP dialog: another call of
this switch (L{linkrtc.call.transfer.JoinedLeg}) or a loopback RTP hop to
an anchor session (L{linkrtc.app.dial.LoopbackLeg}). The call's operators
drive it as any L{ISIPServerLeg}; it sends no SIP message.
"""

from twisted.internet import defer
from zope.interface import implementer

from linkrtc.error import InvalidStateError
from linkrtc.interfaces import ISIPServerLeg


@implementer(ISIPServerLeg)
class StubServerLeg:
    """
    An L{ISIPServerLeg} with nothing behind it: responses are dropped, a
    BYE succeeds at once and any other request fails. Subclasses give the
    far end: what a final response (C{sendFinal}) and a BYE (C{sendBye})
    do there, and the error of other requests (L{noDialog}).

    @ivar request: the stand-in request the call started from
        (L{linkrtc.call.transfer.StandInRequest} or the transferred call's
        INVITE).
    @ivar listener: the L{linkrtc.interfaces.ISIPLegListener} (the call),
        or C{None} until set.
    """

    callId = None

    def __init__(self, request):
        self.request = request
        self.listener = None

    def setListener(self, listener):
        self.listener = listener

    def sendProvisional(self, status, reason=None, body=None, contentType=None, headers=()):
        pass

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        pass

    def sendBye(self):
        return defer.succeed(None)

    def sendRequest(self, method, body=None, contentType=None, headers=()):
        """@return: a failed L{Deferred}: L{noDialog}'s error."""
        return defer.fail(self.noDialog(method))

    def noDialog(self, method):
        """@return: the exception a request C{method} fails with (C{InvalidStateError})."""
        return InvalidStateError(f"this leg has no SIP dialog for {method}")
