# -*- test-case-name: linkrtc.app.test.test_transports -*-
"""
How an application takes control of incoming calls: the
L{linkrtc.interfaces.IApplication} the call engine asks.

While an application that takes calls is connected (an C{/api}
WebSocket) or loaded (C{--application}), every incoming call is decided
C{{"action": "api"}}: it becomes a seed 001 resource and raises
C{sys.call.on_incoming}. Otherwise the call goes to the application
configured before (the webhook, which may itself answer C{{"action":
"api"}}, or the embedded default route to the Request-URI's client).
"""

from twisted.internet import defer
from zope.interface import implementer

from linkrtc.interfaces import IApplication, IOutgoingApplication


@implementer(IApplication, IOutgoingApplication)
class ApiApplication:
    """
    @param fallback: the L{IApplication} used while no application controls calls.
    @param control: the L{linkrtc.app.control.CallControl}.
    """

    def __init__(self, fallback, control):
        self.fallback = fallback
        self.control = control

    def incoming(self, info):
        if self.control.hasController():
            return defer.succeed({"action": "api"})
        return self.fallback.incoming(info)

    def outgoing(self, info):
        outgoing = getattr(self.fallback, "outgoing", None)
        if outgoing is None:
            return defer.succeed({"action": "route", "trunk": None})
        return outgoing(info)

    def notify(self, event):
        return self.fallback.notify(event)

    def __getattr__(self, name):
        return getattr(self.fallback, name)
