# -*- test-case-name: linkrtc.sip.test.test_leglistener -*-
"""
A listener for an L{ISIPServerLeg} that no call holds any more (a leg a
transfer released, or a benchmark's answered leg).
"""

from zope.interface import implementer

from linkrtc.interfaces import ISIPLegListener


@implementer(ISIPLegListener)
class DetachedLegListener:
    """
    Ignores CANCEL, ACK, ACK timeout and termination; answers an in-dialog
    BYE or NOTIFY 200 (RFC 3261 §15.1.2, RFC 3515 §2.4.4) and any other
    request 481 (no call to act on it).
    """

    def legCancelled(self, request):
        pass

    def legAcknowledged(self, ack):
        pass

    def legAckTimeout(self):
        pass

    def legRequestReceived(self, request, respond):
        respond(200 if request.method in ("BYE", "NOTIFY") else 481)

    def legTerminated(self, reason):
        pass
