# -*- test-case-name: linkrtc.call.test.test_fork -*-
"""
Ringing every device of a user at once (a forking proxy's rules, RFC 3261
§16.7, done by the call engine acting as a B2BUA).

An incoming call routed to a user rings all of its devices in parallel:
its connections on C{/ws} (browsers, apps; WebSocket phones are such
connections, L{linkrtc.call.wsphones}) and one branch per registered
SIP contact (L{linkrtc.call.sipphones.PhoneBranch}), at most
C{max-forks} of them (L{devicesFor}). The first to answer wins: the
others get C{state} C{dropped} with cause L{ANSWERED_ELSEWHERE}, which a
SIP branch turns into a CANCEL with L{ANSWERED_ELSEWHERE_REASON} (RFC
3326). When every device refused or failed, the caller gets
L{bestResponse} of their answers.

An offerless INVITE (RFC 3261 §13.2.1) rings the phones too
(L{forkOffers}): in bridge mode they get LinkRTC's RTP offer, and the
winner's codec is offered to the caller in the 200 OK
(L{linkrtc.media.phoneside}); in passthrough they get an offerless
INVITE (L{ForkOffers.offerless}) and the caller's answer in their ACK
(L{linkrtc.call.sipphones}).
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.interfaces import IPhoneMediaSession

__all__ = ["ANSWERED_ELSEWHERE", "ANSWERED_ELSEWHERE_REASON", "DEFAULT_MAX_FORKS",
           "ForkOffers", "bestResponse", "deviceName", "devicesFor", "forkOffers",
           "forkResponses"]

log = Logger()

#: The C{cause} of the C{state} C{dropped} the devices that did not
#: answer get (docs/signalling.rst).
ANSWERED_ELSEWHERE = "answered elsewhere"

#: The C{Reason} header of the CANCEL of a SIP branch that did not answer
#: (RFC 3326 §2; RFC 3261 §16.7 step 10 for the text).
ANSWERED_ELSEWHERE_REASON = 'SIP;cause=200;text="Call completed elsewhere"'

#: Devices one call rings at most (C{max-forks}).
DEFAULT_MAX_FORKS = 10


def bestResponse(responses):
    """
    The final response a call that no device answered gets, from the
    devices' own (RFC 3261 §16.7 step 6, simplified): the first 6xx if
    any; else the first response of the lowest class; a 503 becomes 500
    (the caller would take it for LinkRTC's own overload, §16.7 step 6).

    @param responses: C{(status, reason)} pairs (C{int}, C{str}) in the
        order they came; statuses below 300 are ignored.
    @return: C{(status, reason)}; C{(480, "no device answered")} when
        C{responses} holds none.
    """
    finals = [(s, r) for s, r in responses if isinstance(s, int) and 300 <= s <= 699]
    if not finals:
        return 480, "no device answered"
    global_ = [sr for sr in finals if sr[0] >= 600]
    if global_:
        return global_[0]
    lowest = min(s // 100 for s, _ in finals)
    status, reason = next(sr for sr in finals if sr[0] // 100 == lowest)
    if status == 503:
        return 500, reason
    return status, reason


def devicesFor(call, names):
    """
    Every device C{call} rings for the users C{names}: for each name, its
    connections on C{/ws} (oldest first) and then a branch for each of
    its registered SIP contacts (preferred first); at most
    C{call.services.maxForks} in all. The ones over the bound are left
    out, logged once for the call.

    @param call: the L{linkrtc.call.call.Call}.
    @param names: the users' names, C{str}s (duplicates count once).
    @return: a C{list} of L{linkrtc.interfaces.IClientConnection}s.
    """
    services = call.services
    ringer = getattr(services, "sipPhones", None)
    devices = []
    for name in dict.fromkeys(names):
        devices.extend(services.directory.connectionsFor(name) or ())
        if ringer is not None:
            devices.extend(ringer.branchesFor(call, name))
    bound = getattr(services, "maxForks", DEFAULT_MAX_FORKS) or DEFAULT_MAX_FORKS
    if len(devices) > bound:
        log.warn("call {call_id}: {count} devices for {names}; ringing the first {bound} "
                 "(max-forks)", call_id=call.id, names=", ".join(dict.fromkeys(names)),
                 count=len(devices), bound=bound)
        for device in devices[bound:]:
            discard = getattr(device, "discard", None)
            if discard is not None:
                discard()
        devices = devices[:bound]
    return devices


def deviceName(connection):
    """
    @return: the CDR's C{device} for the connection that answered: a SIP
        phone's registered contact, a WebSocket connection's peer
        address (C{"ws:HOST:PORT"}), or C{None}.
    """
    if connection is None:
        return None
    device = getattr(connection, "device", None)
    if device:
        return str(device)
    peer = getattr(connection, "peer", None)
    if peer:
        return f"ws:{peer}"
    return None


class ForkOffers:
    """
    The offers of a call that rings SIP phones (the C{clientOffer} result
    L{linkrtc.call.operators.ring.OpSendIncoming} gets then).

    @ivar client: the offer for the connections on C{/ws} (C{str}) or
        C{None}.
    @ivar phone: the offer for the SIP branches (C{str}) or C{None} when
        it could not be made, or when they get an offerless INVITE.
    @ivar why: why there is no phone offer (C{str}) or C{None}.
    @ivar offerless: C{True} when the phones get an offerless INVITE
        (passthrough, for an offerless INVITE: their offer goes to the
        caller, the caller's answer in their ACK).
    """

    def __init__(self, client, phone, why=None, offerless=False):
        self.client = client
        if isinstance(phone, bytes):
            phone = phone.decode("utf-8", "replace")
        self.phone = phone
        self.why = why
        self.offerless = offerless


def forkOffers(call, clients):
    """
    Ask the call's media for the clients' offer (when C{clients}) and for
    the phones' (L{linkrtc.interfaces.IPhoneMediaSession.phoneOffer}).

    @param call: the L{linkrtc.call.call.Call}.
    @param clients: C{True} when connections other than SIP branches ring.
    @return: L{Deferred} firing with a L{ForkOffers}; failing as
        C{clientOffer} fails.
    """
    d = call.media.clientOffer(call.sipOffer) if clients else defer.succeed(None)

    def phones(clientOffer):
        if not IPhoneMediaSession.providedBy(call.media):
            return ForkOffers(clientOffer, None, "this media mode cannot call SIP phones")
        pd = defer.maybeDeferred(call.media.phoneOffer, call.sipOffer)
        pd.addCallbacks(lambda offer: ForkOffers(clientOffer, offer,
                                                 offerless=offer is None and call.offerless),
                        lambda f: ForkOffers(clientOffer, None, f.getErrorMessage()))
        return pd

    return d.addCallback(phones)


def forkResponses(call):
    """@return: the C{(status, reason)} list of the devices' refusals of C{call} (kept in C{call.data})."""
    return call.data.setdefault("fork.responses", [])
