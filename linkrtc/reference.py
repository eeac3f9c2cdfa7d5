# -*- test-case-name: linkrtc.test.test_reference -*-
"""
Late binding for the few construction cycles of the service
(L{linkrtc.service}): an object that needs one built after it is given a
L{Reference} at construction, and the reference is bound once, to the
real object, as soon as that is built.

The one cycle today is the call engine's: the SIP user agent, the
WebSocket phones and the call-control API's dialer all need the
L{linkrtc.call.manager.CallManager}, which needs them (its dialer, its
WebSocket phones, its call control).
"""


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
        return getattr(self.target, name)

    def __repr__(self):
        return f"<Reference to {self._what}: {self._target!r}>"
