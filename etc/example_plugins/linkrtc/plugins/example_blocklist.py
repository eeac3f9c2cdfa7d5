"""
An example LinkRTC operator plugin: refuse calls from listed callers.

Enable it with::

    twistd -n linkrtc --operator example.blocklist:bob,mallory

Calls whose From user is listed get 603 Decline before the application is
asked. See docs/operators.rst for a walk-through.
"""

from twisted.plugin import IPlugin
from zope.interface import implementer

from linkrtc.call.events import InviteEvent
from linkrtc.interfaces import IOperator, IOperatorFactory


@implementer(IOperator)
class Blocklist:
    """
    In C{pending}, on the INVITE: end the call with 603 if its From user is
    in C{blocked}; otherwise let the next operator (the stock C{OpRing})
    ask the application.
    """

    name = "example.blocklist"
    handles = (InviteEvent,)      # the machine skips us for other events
    transitions = ("dropped",)    # checked when the machine is built

    def __init__(self, blocked):
        self.blocked = frozenset(blocked)

    def process(self, call, event):
        caller = getattr(call.request.fromAddr.uri, "user", None)
        if caller in self.blocked:
            call.data[self.name] = caller
            return call.end(603, f"caller {caller} is blocked", "sys")
        return None


@implementer(IPlugin, IOperatorFactory)
class BlocklistFactory:
    operatorName = "example.blocklist"
    operatorHelp = "Refuse calls (603) whose From user is in the list, before the application."
    argStringFormat = "Comma-separated From users, e.g. bob,mallory."
    # First in pending's event queue, so the INVITE reaches us before OpRing.
    placements = (("pending", "event", "first"),)

    def buildOperator(self, argString):
        users = [u.strip() for u in (argString or "").split(",") if u.strip()]
        if not users:
            raise ValueError("give at least one user: example.blocklist:USER[,USER...]")
        return Blocklist(users)


# getPlugins finds module-level providers.
blocklist = BlocklistFactory()
