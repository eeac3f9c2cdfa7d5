# -*- test-case-name: linkrtc.call.test.test_contactfork -*-
"""
A client's call to a SIP user with several registered contacts rings
them all at once (RFC 3261 §16.6-16.7 parallel forking, done by the B2BUA
as L{linkrtc.call.fork} does for incoming calls).

L{linkrtc.call.contacts.makeContactLeg} makes one INVITE client leg per
contact (L{linkrtc.call.contacts.inviteToContact}, each through the flow
its REGISTER came by) and, when there are two or more, wraps them in a
L{ContactFork}: one L{linkrtc.interfaces.ISIPClientLeg} for the
L{linkrtc.call.outboundcall.OutboundCall}, so the outbound topology
(timers, media, answer, hangup) is the one of a single leg:

 - provisional responses: the first 101-199 of any branch is passed on
   (the caller gets C{ringing} once); after it, only those carrying SDP
   from the first branch that sent SDP (early media from one branch);
 - the first 2xx wins and is passed on; every other branch is CANCELed
   with L{linkrtc.call.fork.ANSWERED_ELSEWHERE_REASON} (RFC 3326). A 2xx
   that still comes on such a branch is ACKed and BYEd by its leg (RFC
   3261 §13.2.2.4), or here if the leg passed it on;
 - a 6xx CANCELs the other branches and is passed on at once (§16.7
   step 5); otherwise, once every branch failed, the caller gets
   L{linkrtc.call.fork.bestResponse} of their responses;
 - L{ContactFork.cancel} (the caller hung up, the ring timer fired)
   CANCELs every branch still ringing.

Once a branch won, the fork is that branch's leg: its dialog, BYE and
in-dialog requests. With one contact no fork is made: the leg is used as
it is.
"""

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.call.fork import ANSWERED_ELSEWHERE_REASON, bestResponse
from linkrtc.error import InvalidStateError
from linkrtc.interfaces import ISIPClientLeg, ISIPClientLegListener

__all__ = ["ContactFork"]

log = Logger()


@implementer(ISIPClientLegListener)
class _Branch:
    """
    One contact of a L{ContactFork}: the listener of its leg.

    @ivar binding: the contact's L{linkrtc.sip.bindings.Binding}.
    @ivar leg: its unstarted, then started, L{linkrtc.interfaces.ISIPClientLeg}.
    @ivar done: C{True} once it failed or was CANCELed.
    """

    def __init__(self, fork, binding, leg):
        self.fork = fork
        self.binding = binding
        self.leg = leg
        self.done = False

    def legProgress(self, response):
        self.fork._progress(self, response)

    def legAnswered(self, response):
        self.fork._answered(self, response)

    def legFailed(self, status, reason, response):
        self.fork._failed(self, status, reason, response)

    def legRequestReceived(self, request, respond):
        if self.fork.winner is self:
            self.fork._tell("legRequestReceived", request, respond)
        else:
            respond(481)

    def legTerminated(self, reason):
        if self.fork.winner is self:
            self.fork._tell("legTerminated", reason)


@implementer(ISIPClientLeg)
class ContactFork:
    """
    The INVITE client legs to every contact of one SIP user, seen as one
    leg (see the module's docstring).

    Attributes not named here (C{state}, C{userAgent}, C{transaction},
    C{remoteTag}...) are those of the winning branch's leg, or of the
    first (preferred) branch's before an answer.

    @ivar branches: the L{_Branch}es, preferred first.
    @ivar winner: the L{_Branch} that answered, or C{None}.
    @ivar winningContact: the answering contact's
        L{linkrtc.sip.bindings.Binding} (the CDR's C{device}), or C{None}.
    @ivar responses: C{(status, reason, response)} of the branches that
        failed, in the order they came.
    """

    def __init__(self, branches):
        """
        @param branches: C{(binding, leg)} pairs, preferred first, at least
            one; the legs are not started yet.
        """
        self.branches = [_Branch(self, binding, leg) for binding, leg in branches]
        if not self.branches:
            raise ValueError("a fork needs at least one branch")
        self.listener = None
        self.winner = None
        self.winningContact = None
        self.responses = []
        self._over = False  # the outcome was told, or the fork was CANCELed
        self._rung = False
        self._earlyMedia = None

    def __repr__(self):
        return f"<ContactFork {len(self.branches)} branches winner={self.winner and self.winner.binding.uriText}>"

    def _lead(self):
        branches = self.__dict__.get("branches")
        if not branches:
            raise AttributeError("no branch")
        winner = self.__dict__.get("winner")
        return (winner or branches[0]).leg

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._lead(), name)

    @property
    def request(self):
        """The winner's (else the preferred branch's) last INVITE, or C{None}."""
        return getattr(self._lead(), "request", None)

    @property
    def callId(self):
        """The winner's (else the preferred branch's) Call-ID, C{str}."""
        return self._lead().callId

    @property
    def localTag(self):
        """The winner's (else the preferred branch's) From tag, C{str}."""
        return self._lead().localTag

    @property
    def dialog(self):
        """The winner's L{linkrtc.sip.dialog.Dialog}, else C{None}."""
        return self.winner.leg.dialog if self.winner is not None else None

    def _tell(self, method, *args):
        if self.listener is None:
            return
        try:
            getattr(self.listener, method)(*args)
        except Exception:
            log.failure("contact fork listener {method} failed", method=method)

    # -- ISIPClientLeg ---------------------------------------------------------------

    def setListener(self, listener):
        """See L{ISIPClientLeg.setListener}."""
        self.listener = listener

    def start(self):
        """Send every branch's INVITE (a branch whose leg cannot start fails with 503)."""
        for branch in list(self.branches):
            branch.leg.setListener(branch)
        for branch in list(self.branches):
            if self._over:
                break
            try:
                branch.leg.start()
            except Exception as e:
                log.failure("contact fork: the INVITE to {uri} failed",
                            uri=branch.binding.uriText)
                self._failed(branch, 503, f"cannot send INVITE: {e}", None)

    def cancel(self, reason=None):
        """
        Before the answer: CANCEL every branch still ringing (C{reason}, a
        C{Reason} header value or C{None}); the listener hears nothing
        more. After it: the winner's leg's C{cancel} (nothing to do).
        """
        if self.winner is not None:
            self.winner.leg.cancel(reason=reason)
            return
        self._over = True
        self._cancelOthers(None, reason)

    def sendBye(self):
        """See L{ISIPClientLeg.sendBye}: the winner's; fails before an answer."""
        if self.winner is None:
            return defer.fail(InvalidStateError("no branch answered"))
        return self.winner.leg.sendBye()

    def sendRequest(self, method, body=None, contentType=None, headers=(), **kwargs):
        """See L{ISIPClientLeg.sendRequest}: in the winner's dialog; fails before an answer."""
        if self.winner is None:
            return defer.fail(InvalidStateError("no branch answered"))
        return self.winner.leg.sendRequest(method, body=body, contentType=contentType,
                                           headers=headers, **kwargs)

    # -- what the branches hear --------------------------------------------------------

    def _cancelOthers(self, keep, reason):
        for branch in self.branches:
            if branch is keep or branch.done:
                continue
            branch.done = True
            try:
                branch.leg.cancel(reason=reason)
            except Exception:
                log.failure("contact fork: CANCEL to {uri} failed", uri=branch.binding.uriText)

    def _progress(self, branch, response):
        if self._over or self.winner is not None or branch.done:
            return
        early = bool(getattr(response, "body", b""))
        if early and self._earlyMedia is None:
            self._earlyMedia = branch
        if not self._rung:
            self._rung = True
        elif not (early and self._earlyMedia is branch):
            return  # ringing was told once; early media comes from one branch only
        self._tell("legProgress", response)

    def _answered(self, branch, response):
        if self._over or self.winner is not None or branch.done:
            # Another branch won, or the call gave up, while this 2xx was on
            # its way: the leg ACKed it; end that dialog (RFC 3261 §13.2.2.4).
            log.info("contact fork: late 2xx from {uri}: BYE", uri=branch.binding.uriText)
            branch.done = True
            try:
                branch.leg.sendBye().addErrback(lambda f: None)
            except Exception:
                log.failure("contact fork: BYE to {uri} failed", uri=branch.binding.uriText)
            return
        self.winner = branch
        self.winningContact = branch.binding
        log.info("contact fork: {uri} answered; CANCEL to the others",
                 uri=branch.binding.uriText)
        self._cancelOthers(branch, ANSWERED_ELSEWHERE_REASON)
        self._tell("legAnswered", response)

    def _failed(self, branch, status, reason, response):
        if self._over or self.winner is not None or branch.done:
            return
        branch.done = True
        self.responses.append((status, reason, response))
        if isinstance(status, int) and status >= 600:
            # A 6xx ends the search at once (RFC 3261 §16.7 step 5).
            self._cancelOthers(branch, None)
        elif not all(b.done for b in self.branches):
            return
        self._over = True
        status, reason = bestResponse([(s, r) for s, r, _ in self.responses])
        chosen = next((resp for s, _, resp in self.responses if s == status), None)
        self._tell("legFailed", status, reason, chosen)
