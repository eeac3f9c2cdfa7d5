# -*- test-case-name: linkrtc.call.test.test_contacts -*-
"""
Outgoing calls to registered SIP phones: a client's C{call} whose C{to} is
the name of a SIP user with live bindings (L{linkrtc.sip.registrar}) goes
to that user's contacts through the flow each REGISTER came by (RFC 3261
§10.3; the NAT-friendly reuse of RFC 5626), not through a trunk. With
several contacts all of them ring at once, at most C{max-forks}
(L{linkrtc.call.contactfork.ContactFork}); the first to answer wins.

The L{linkrtc.call.outbound.OutboundDialer} asks L{contactsFor} before its
trunk checks and hands such calls to L{routeToContact} and
L{makeContactLeg}; the rest of the outbound topology (timers, media,
answer, hangup) is the same as for a trunk call.
"""

from twisted.logger import Logger

from linkrtc.call.contactfork import ContactFork
from linkrtc.call.fork import DEFAULT_MAX_FORKS
from linkrtc.signalling.messages import isValidClientName
from linkrtc.sip.uri import SIPURI, NameAddr

__all__ = ["contactsFor", "inviteToContact", "makeContactLeg", "routeToContact"]

log = Logger()


def contactsFor(bindings, target):
    """
    @param bindings: the L{linkrtc.sip.bindings.BindingTable}, or C{None}.
    @param target: a C{call}'s C{to} (C{str}).
    @return: the live L{linkrtc.sip.bindings.Binding}s of the SIP user
        named C{target}, preferred first (empty if it is not a registered
        user's name).
    """
    if bindings is None or not isValidClientName(target):
        return []
    # A phone registered over a WebSocket speaks WebRTC: it is reached as a
    # client (linkrtc.call.wsphones), not with an RTP offer.
    return [b for b in bindings.bindingsFor(target)
            if str(getattr(b.flow, "transport", "")).upper() not in ("WS", "WSS")]


def routeToContact(dialer, call, contacts):
    """
    Route C{call} to C{contacts} (preferred first; C{call.contact} is the
    first, C{call.contacts} the first C{max-forks} of them, the rest
    logged once): ask the media session for the INVITE's offer (all
    codecs allowed), as L{linkrtc.call.outbound.OutboundDialer.route}
    does for a trunk.

    @return: C{None}, L{linkrtc.call.outbound.PENDING} or C{(status, reason)}.
    """
    from linkrtc.interfaces import IOutboundMediaSession

    if not IOutboundMediaSession.providedBy(call.media):
        return 501, f"outbound calls are not implemented with --media {dialer.mediaName}"
    bound = getattr(call.services, "maxForks", DEFAULT_MAX_FORKS) or DEFAULT_MAX_FORKS
    if len(contacts) > bound:
        log.warn("call {call_id}: {count} contacts for {user}; ringing the first {bound} "
                 "(max-forks)", call_id=call.id, user=contacts[0].user, count=len(contacts),
                 bound=bound)
    call.contacts = tuple(contacts[:bound])
    call.contact = contacts[0]
    call.routeTarget = contacts[0].user
    return dialer.takeOffer(call, call.media.sipOffer, call.clientSdp, None)


def makeContactLeg(dialer, call, offer=None):
    """
    The (unstarted) SIP leg of a call to C{call.contacts} (else
    C{call.contact}): for each contact an INVITE whose Request-URI is the
    registered contact, sent to the binding's flow
    (L{inviteToContact}); From is C{sip:CLIENT@LINKRTC}, To
    C{sip:USER@LINKRTC}. 3xx are not followed. One contact: its leg as it
    is; several: a L{ContactFork} of their legs (all ring, first answer
    wins).

    @param offer: the INVITE's SDP (C{bytes}), or C{None} for the
        client's offer as it is (passthrough).
    """
    contacts = getattr(call, "contacts", None) or (call.contact,)
    binding = contacts[0]
    local = dialer.userAgent.localContact(binding.flow.destination()).uri
    caller = call.clientName or "anonymous"
    if offer is None:
        offer = call.clientSdp.encode("utf-8")
    call.sipFrom = str(SIPURI("sip", user=caller, host=local.host, port=local.port))
    call.sipTo = str(SIPURI("sip", user=binding.user, host=local.host, port=local.port))
    legs = [inviteToContact(dialer.userAgent, dialer.clock, dialer.legFactory, contact, caller,
                            offer, display=caller) for contact in contacts]
    if len(legs) == 1:
        return legs[0]
    return ContactFork(zip(contacts, legs))


def inviteToContact(userAgent, clock, legFactory, binding, caller, offer, display=None,
                    delayedAck=False):
    """
    An unstarted INVITE client leg to a registered contact, through the
    flow its REGISTER came by (RFC 5626 flow reuse; no 3xx followed):
    Request-URI the contact, From C{sip:CALLER@LINKRTC}, To
    C{sip:USER@LINKRTC}.

    @param userAgent: the L{linkrtc.sip.useragent.UserAgent}.
    @param clock: an C{IReactorTime}.
    @param legFactory: makes the leg (L{linkrtc.sip.outbound.InviteClientLeg}'s
        keyword arguments).
    @param binding: the contact's L{linkrtc.sip.bindings.Binding}.
    @param caller: the caller's user part (C{str}), or C{None} for
        C{anonymous}.
    @param offer: the INVITE's SDP (C{bytes} or C{str}), or C{None}
        (offerless).
    @param display: the From display name, or C{None}.
    @param delayedAck: the leg's C{delayedAck} (its 2xx's ACK waits).
    """
    destination = binding.flow.destination()
    local = userAgent.localContact(destination).uri
    fromAddr = NameAddr(SIPURI("sip", user=caller or "anonymous", host=local.host,
                               port=local.port), display=display)
    toAddr = NameAddr(SIPURI("sip", user=binding.user, host=local.host, port=local.port))
    if isinstance(offer, str):
        offer = offer.encode("utf-8")
    return legFactory(
        userAgent=userAgent, clock=clock, requestURI=binding.contact.uri,
        fromAddr=fromAddr, toAddr=toAddr, proxy=destination, body=offer,
        redirectCheck=lambda uri: None, delayedAck=delayedAck)
