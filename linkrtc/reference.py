# -*- test-case-name: linkrtc.test.test_reference -*-
"""
Late binding for the few construction cycles of the service
(L{linkrtc.service}): an object that needs one built after it is given a
L{Reference} at construction, and the reference is bound once, to the
real object, as soon as that is built.

The cycles today: the call engine's (the SIP user agent, the WebSocket
phones and the call-control API's dialer need the
L{linkrtc.call.manager.CallManager}, which needs the phones and the call
control, and the user agent through them): they hold an
L{EngineReference}, and the transfer engine
(L{linkrtc.call.transfer.Transfers}, one of the manager's services) a
L{Reference} bound in L{linkrtc.call.manager.buildCallManager}; and the instant messenger's (L{linkrtc.sip.messaging}:
the registrar needs it, the user agent needs the registrar, the messenger
sends through the user agent): it holds a L{Reference} to the user agent.
"""

from zope.interface import implementer

from linkrtc.interfaces import IClientMessageHandler, IInviteHandler


class Reference:
    """
    Stands for an object that is built after those that need it; bound
    once (L{bind}), it forwards every attribute to that object, so the
    holders use it as they would the object itself.

    Nothing may be used through it before it is bound: the service binds
    it while it is built, before anything runs.
    """

    __slots__ = ("_what", "_target")

    def __init__(self, what):
        """
        @param what: what it stands for, C{str}, for the errors.
        """
        self._what = what
        self._target = None

    def bind(self, target):
        """
        Make this reference stand for C{target}; once only.

        @raise RuntimeError: it is bound already.
        """
        if self._target is not None:
            raise RuntimeError(f"{self._what} is bound already")
        self._target = target

    @property
    def target(self):
        """
        The object this reference stands for.

        @raise RuntimeError: not bound yet.
        """
        if self._target is None:
            raise RuntimeError(f"{self._what} is not built yet")
        return self._target

    def __getattr__(self, name):
        # Only for names the class lacks (Python looks here last).
        target = self._target
        if target is None:
            raise RuntimeError(f"{self._what} is not built yet")
        return getattr(target, name)

    def __repr__(self):
        return f"<Reference to {self._what}: {self._target!r}>"


@implementer(IInviteHandler, IClientMessageHandler)
class EngineReference(Reference):
    """
    A L{Reference} to the call engine (L{linkrtc.call.manager.CallManager})
    for the SIP user agent (its L{IInviteHandler}) and the WebSocket phones
    (their L{IClientMessageHandler}). Fast path: what they use on every
    INVITE or client message is forwarded by a method of its own, without
    the generic lookup (an exception and a retry, about 2 microseconds).
    """

    __slots__ = ()

    def __init__(self):
        Reference.__init__(self, "the call engine")

    @property
    def calls(self):
        """The engine's live calls (the user agent counts them)."""
        return self.target.calls

    def inviteReceived(self, leg):
        return self.target.inviteReceived(leg)

    def clientMessageReceived(self, connection, message):
        return self.target.clientMessageReceived(connection, message)

    def clientLost(self, connection):
        return self.target.clientLost(connection)
