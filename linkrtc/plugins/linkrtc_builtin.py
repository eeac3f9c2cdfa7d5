# -*- test-case-name: linkrtc.call.test.test_registry -*-
"""
LinkRTC's stock operators, registered as operator plugins the same way a
user's are (found by C{getPlugins(IOperatorFactory, linkrtc.plugins)}).

Cheap to import: the operator classes are imported only when built. The
order of L{stockFactories} is the order of the operators inside each queue.
Stock operators are always on; C{--operator} is for the others.
"""

from importlib import import_module

from twisted.plugin import IPlugin
from zope.interface import implementer

from linkrtc.interfaces import IOperatorFactory

_LIVE_BEFORE_ANSWER = ("pending", "calling", "ringing", "answering")
_LIVE = _LIVE_BEFORE_ANSWER + ("confirmed",)

# The call-control API's states (seed 001; linkrtc.call.states).
_API_BEFORE_ANSWER = ("Initiated", "Answer")
_API_ACTIONS = ("Play", "Record", "SendDtmf", "ReceiveDtmf", "Dial", "Connect", "Conf")
_API_ANSWERED = ("Idle",) + _API_ACTIONS
_API_LIVE = _API_BEFORE_ANSWER + _API_ANSWERED


@implementer(IPlugin, IOperatorFactory)
class StockOperatorFactory:
    """
    A factory for one stock operator class.

    @ivar stock: C{True}: the operator is part of the default topology.
    """

    stock = True
    argStringFormat = "No argument."

    def __init__(self, operatorName, module, placements, operatorHelp):
        self.operatorName = operatorName
        self._module = module
        self.placements = tuple((state, queue) for state, queue in placements)
        self.operatorHelp = operatorHelp

    def buildOperator(self, argString):
        module = import_module(f"linkrtc.call.operators.{self._module}")
        return getattr(module, self.operatorName)()


@implementer(IPlugin, IOperatorFactory)
class ApiVariantFactory(StockOperatorFactory):
    """
    A stock operator reused in the call-control API's states
    (L{linkrtc.call.operators.api.ApiVariant}): it runs only for calls an
    application controls, and its C{confirmed} is renamed by C{variant}.
    """

    def __init__(self, innerName, module, placements, operatorHelp, variant):
        super().__init__(innerName + "Api", module, placements, operatorHelp)
        self._inner = innerName
        self._variant = variant

    def buildOperator(self, argString):
        api = import_module("linkrtc.call.operators.api")
        module = import_module(f"linkrtc.call.operators.{self._module}")
        return getattr(api, self._variant)(getattr(module, self._inner)())


@implementer(IPlugin, IOperatorFactory)
class DialledVariantFactory(ApiVariantFactory):
    """An L{ApiVariantFactory} whose placements may say C{"first"}."""

    def __init__(self, innerName, module, placements, operatorHelp, variant):
        super().__init__(innerName, module, [], operatorHelp, variant)
        self.operatorName = innerName + "Dialled"
        self.placements = tuple(tuple(p) for p in placements)


def _f(name, module, placements, text):
    return StockOperatorFactory(name, module, placements, text)


def _in(queue, *states):
    return [(state, queue) for state in states]


#: Every stock operator factory, in queue order.
stockFactories = [
    # -- entry operators --
    _f("OpSendRinging", "ring", _in("entry", "ringing", "Initiated"),
       "Send 180 Ringing (183 with SDP when the media has early media) to SIP once."),
    _f("OpSIPHangup", "end", _in("entry", "dropped"),
       "Send the final response (before answer) or BYE (after) that the ending asks for."),
    _f("OpNotifyClients", "notify", _in("entry", "ringing", "confirmed", "dropped"),
       "Send the attached client connections a 'state' message."),
    _f("OpNotifyApplication", "notify",
       _in("entry", "calling", "ringing", "confirmed", "dropped"),
       "Send the application a 'state' event."),
    _f("OpStartRingTimer", "timers", _in("entry", "calling"),
       "Start the ring timer (--ring-timeout seconds)."),
    _f("OpOfferClient", "ring", _in("entry", "calling"),
       "Ask the media session for the client's offer."),
    _f("OpStopRingTimer", "timers", _in("entry", "answering"), "Stop the ring timer."),
    _f("OpTellHeir", "resume", _in("entry", "dropped"),
       "A client waiting to resume the call hears it ended."),
    _f("OpReleaseCall", "end", _in("entry", "dropped"),
       "Free timers and media, write the CDR, tell the application."),
    # -- event operators --
    _f("OpRing", "ring", _in("event", "pending"),
       "On the INVITE, ask the application who takes the call."),
    _f("OpApiTakeControl", "api", _in("event", "pending"),
       "On the decision 'api': the call becomes a call-control resource (Initiated)."),
    _f("OpRoute", "ring", _in("event", "pending"),
       "On the application's decision: reject (403 or its status), 480 if the client "
       "has no device (connection or registered SIP phone), else calling."),
    _f("OpSendIncoming", "ring", _in("event", "calling"),
       "Send 'incoming' to the client's connections; 480 if none takes it."),
    _f("OpSendOk", "answer", _in("event", "answering"),
       "Send 200 OK with the SIP answer; confirmed."),
    _f("OpAck", "answer", _in("event", "confirmed"),
       "Take the ACK (its SDP for an offerless INVITE)."),
    _f("OpSendAnswer", "answer", _in("event", "confirmed"),
       "Send the client the SIP side's answer from the ACK."),
    _f("OpAckTimeout", "end", _in("event", "confirmed"),
       "No ACK for the 200 OK: BYE, dropped, cause 408."),
    _f("OpRefer", "transfer", _in("event", "confirmed"),
       "REFER from SIP: blind transfer to a client, attended (Replaces), or 403."),
    _f("OpTransferorBye", "transfer", _in("event", "confirmed"),
       "BYE from the transferor while its blind transfer rings: 200, the transfer goes on."),
    _f("OpLegReplaced", "transfer", _in("event", "confirmed"),
       "INVITE with Replaces naming the call's dialog: it takes the SIP side."),
    _f("OpClientTransfer", "transfer", _in("event", "confirmed"),
       "Client 'transfer': REFER the SIP side to the target (dial plan applies)."),
    _f("OpReferAnswered", "transfer", _in("event", "confirmed"),
       "The SIP side's answer to our REFER: told to the client."),
    _f("OpReferNotify", "transfer", _in("event", "confirmed"),
       "NOTIFY (sipfrag) of our REFER: told to the client; 2xx ends the call."),
    _f("OpEndCall", "end", _in("event", "confirmed"), "BYE from SIP: 200, dropped."),
    _f("OpReinvite", "answer", _in("event", "confirmed"),
       "re-INVITE/UPDATE: hand the SDP to the media session."),
    _f("OpReofferDone", "answer", _in("event", "confirmed"),
       "Answer the re-INVITE; announce hold/unhold."),
    _f("OpClientRinging", "ring", _in("event", "calling", "ringing"),
       "Client 'ringing': go to ringing."),
    _f("OpAnswerCall", "answer", _in("event", "calling", "ringing"),
       "First client 'accept' wins; the others are told 'answered elsewhere'."),
    _f("OpRejectCall", "ring", _in("event", "calling", "ringing", "answering"),
       "Client 'reject' (busy 486, decline 603) or 'hangup' before answer."),
    _f("OpClientHangup", "end", _in("event", "confirmed"), "Client 'hangup': BYE, dropped."),
    _f("OpClientDtmf", "answer", _in("event", "confirmed"),
       "Client 'dtmf': send the digits on the media."),
    _f("OpClientHold", "answer", _in("event", "confirmed"), "Client 'hold'/'unhold'."),
    _f("OpMediaDigits", "answer", _in("event", "confirmed"),
       "DTMF from SIP: tell the client and the application."),
    _f("OpMediaTimeout", "end", _in("event", "confirmed"), "No RTP: BYE, cause 408."),
    _f("OpCancel", "ring", _in("event", *_LIVE_BEFORE_ANSWER, *_API_BEFORE_ANSWER),
       "CANCEL: 487, dropped."),
    _f("OpRingTimeout", "timers", _in("event", "calling", "ringing"),
       "Ring timer fired: 480, dropped."),
    _f("OpClientGone", "end", _in("event", "calling", "ringing", "answering", "confirmed"),
       "A client connection closed: 480 before answer, BYE after."),
    _f("OpClientResume", "resume", _in("event", "confirmed"),
       "Client 'resume' after its connection closed: a new WebRTC leg; 'answer'."),
    _f("OpResumeTimeout", "resume", _in("event", "confirmed"),
       "The client did not resume in time (--resume-seconds): BYE, cause 480."),
    _f("OpLegTerminated", "end", _in("event", *_LIVE, *_API_LIVE),
       "The SIP leg is gone: dropped."),
    _f("OpShutdown", "end", _in("event", *_LIVE, *_API_LIVE), "LinkRTC stops: 503 or BYE."),
    _f("OpInDialogRequest", "answer", _in("event", "confirmed"),
       "Other in-dialog requests: INFO (DTMF relay) and OPTIONS 200, others 501."),
] + [
    # -- the call-control API (seed 001): entry operators --
    _f("OpApiIncoming", "api", _in("entry", "Initiated"),
       "API: make the call a resource, start the decision timer, raise on_incoming."),
    _f("OpApiReleased", "api", _in("entry", "dropped"),
       "API: stop the running action and raise on_released."),
    # -- event operators --
    _f("OpApiDecideTimeout", "api", _in("event", "Initiated"),
       "API: no answer/drop/redirect/route within the webhook timeout: 503."),
    _f("OpApiInitiated", "api", _in("event", "Initiated"),
       "API: answer (LinkRTC answers the SIP offer), redirect (302), route (to a client)."),
    _f("OpApiAnswered", "api", _in("event", "Answer"),
       "API: the media's answer goes in the 200 OK; Idle."),
    ApiVariantFactory("OpAck", "answer", _in("event", *_API_ANSWERED),
                      "API: take the ACK (its SDP for an offerless INVITE).", "answeredVariant"),
    ApiVariantFactory("OpSendAnswer", "answer", _in("event", *_API_ANSWERED),
                      "API: the ACK's SDP answer.", "answeredVariant"),
    _f("OpAckTimeout", "end", _in("event", *_API_ANSWERED),
       "API: no ACK for the 200 OK: BYE, cause 408."),
    _f("OpApiTransfer", "transfer", _in("event", "Idle"),
       "API: sys.call.transfer: REFER the SIP side to to_uri (dial plan applies)."),
    _f("OpReferAnswered", "transfer", _in("event", "Idle"),
       "API: the SIP side's answer to our REFER: the method's result."),
    _f("OpReferNotify", "transfer", _in("event", "Idle"),
       "API: NOTIFY (sipfrag) of our REFER; 2xx releases the call."),
    _f("OpEndCall", "end", _in("event", *_API_ANSWERED), "API: BYE from SIP: 200, dropped."),
    ApiVariantFactory("OpReinvite", "answer", _in("event", *_API_ANSWERED),
                      "API: re-INVITE/UPDATE to the media session.", "answeredVariant"),
    ApiVariantFactory("OpReofferDone", "answer", _in("event", *_API_ANSWERED),
                      "API: answer the re-INVITE.", "answeredVariant"),
    _f("OpMediaTimeout", "end", _in("event", *_API_ANSWERED), "API: no RTP: BYE, cause 408."),
    _f("OpApiDigits", "api", _in("event", *_API_ANSWERED),
       "API: DTMF from SIP is for the audio's actions."),
    _f("OpApiAnswerTimeout", "api", _in("event", *_API_ANSWERED),
       "API: max_answer_seconds passed: BYE, cause 200."),
    _f("OpApiIdle", "api", _in("event", "Idle"),
       "API: start a CTI action (play, record, DTMF, connect, conference)."),
    _f("OpApiAction", "api", _in("event", *_API_ACTIONS),
       "API: stop the running action; its end raises on_*_completed, Idle."),
    ApiVariantFactory("OpInDialogRequest", "answer", _in("event", *_API_ANSWERED),
                      "API: INFO (DTMF relay) and OPTIONS 200, others 501.", "answeredVariant"),
    _f("OpApiCommon", "api", _in("event", *_API_LIVE), "API: nop and drop in any live state."),
    _f("OpApiLateResult", "api", _in("event", "dropped"),
       "API: an action ending after the release still raises on_*_completed."),
    # -- a browser client an application rings (construct, linkrtc.app.dial) --
    DialledVariantFactory("OpSendOk", "answer", [("answering", "event", "first")],
                          "API: a browser leg the application rang is answered: Idle, "
                          "on_dial_completed.", "dialVariant"),
    _f("OpApiCommon", "api", _in("event", "calling", "ringing", "answering"),
       "API: nop and drop while a browser leg rings."),
    _f("OpClientHangup", "end", _in("event", *_API_ANSWERED),
       "API: a browser leg's client hangs up: dropped."),
    _f("OpClientGone", "end", _in("event", *_API_ANSWERED),
       "API: a browser leg's connection closed: dropped."),
]

# Module-level providers are what getPlugins finds.
for _factory in stockFactories:
    globals()[_factory.operatorName] = _factory
del _factory


# -- outgoing calls (linkrtc.call.outbound): their own topology -----------------------

_OUT_LIVE_BEFORE_ANSWER = ("routing", "calling", "ringing")
_OUT_LIVE = _OUT_LIVE_BEFORE_ANSWER + ("confirmed",)

#: The stock operators of the outbound topology, in queue order; the
#: confirmed call and the end reuse incoming calls' operators.
outboundFactories = [
    # -- entry operators --
    _f("OpSIPHangup", "end", _in("entry", "dropped"),
       "Outbound: CANCEL (before the answer) or BYE (after) as the ending asks."),
    _f("OpNotifyClients", "notify", _in("entry", "ringing", "confirmed", "dropped"),
       "Outbound: send the caller's connection a 'state' message."),
    _f("OpNotifyApplication", "notify",
       _in("entry", "calling", "ringing", "confirmed", "dropped"),
       "Outbound: send the application a 'state' event."),
    _f("OpSendInvite", "outbound", _in("entry", "calling"),
       "Outbound: start the ring timer (max_ring_seconds) and send the INVITE."),
    _f("OpRestartRingTimer", "outbound", _in("entry", "ringing"),
       "Outbound: the far end rings; max_ring_seconds counts again from now."),
    _f("OpStartAnswerTimer", "outbound", _in("entry", "confirmed"),
       "Outbound: stop the ring timer, start max_answer_seconds."),
    _f("OpTellHeir", "resume", _in("entry", "dropped"),
       "Outbound: a client waiting to resume the call hears it ended."),
    _f("OpReleaseCall", "end", _in("entry", "dropped"),
       "Outbound: free timers and media, write the CDR, tell the application."),
    # -- event operators --
    _f("OpAskOutgoing", "outbound", _in("event", "routing"),
       "Outbound: on the client's 'call', ask the application ('outgoing')."),
    _f("OpRouteOutgoing", "outbound", _in("event", "routing"),
       "Outbound: on the decision, reject or pick the trunk and make the SIP leg."),
    _f("OpOutgoingProgress", "outbound", _in("event", "calling", "ringing"),
       "Outbound: 18x: early-media SDP to the client as 'answer'; ringing."),
    _f("OpOutgoingAnswered", "outbound", _in("event", "calling", "ringing"),
       "Outbound: 2xx: its SDP to the client as 'answer'; confirmed."),
    _f("OpOutgoingFailed", "outbound", _in("event", "calling", "ringing"),
       "Outbound: the INVITE failed: dropped with its SIP status."),
    _f("OpOutgoingRingTimeout", "outbound", _in("event", "calling", "ringing"),
       "Outbound: max_ring_seconds passed: CANCEL, cause 480."),
    _f("OpOutgoingHangup", "outbound", _in("event", *_OUT_LIVE_BEFORE_ANSWER),
       "Outbound: the caller hangs up before the answer: CANCEL, cause 487."),
    _f("OpAnswerTimeout", "outbound", _in("event", "confirmed"),
       "Outbound: max_answer_seconds passed: BYE, cause 200."),
    _f("OpEndCall", "end", _in("event", "confirmed"), "Outbound: BYE from SIP: 200, dropped."),
    _f("OpReinvite", "answer", _in("event", "confirmed"),
       "Outbound: re-INVITE/UPDATE: answered with our last SDP."),
    _f("OpReofferDone", "answer", _in("event", "confirmed"),
       "Outbound: answer the re-INVITE; announce hold/unhold."),
    _f("OpClientHangup", "end", _in("event", "confirmed"), "Outbound: client 'hangup': BYE."),
    _f("OpClientDtmf", "answer", _in("event", "confirmed"), "Outbound: client 'dtmf'."),
    _f("OpClientHold", "answer", _in("event", "confirmed"), "Outbound: client 'hold'/'unhold'."),
    _f("OpMediaDigits", "answer", _in("event", "confirmed"), "Outbound: DTMF from SIP."),
    _f("OpMediaTimeout", "end", _in("event", "confirmed"), "Outbound: no RTP: BYE, cause 408."),
    _f("OpClientGone", "end", _in("event", *_OUT_LIVE),
       "Outbound: the caller's connection closed: CANCEL or BYE, cause 480."),
    _f("OpClientResume", "resume", _in("event", "confirmed"),
       "Outbound: client 'resume' after its connection closed: a new WebRTC leg."),
    _f("OpResumeTimeout", "resume", _in("event", "confirmed"),
       "Outbound: the client did not resume in time: BYE, cause 480."),
    _f("OpLegTerminated", "end", _in("event", "confirmed"),
       "Outbound: the SIP dialog is gone: dropped."),
    _f("OpShutdown", "end", _in("event", *_OUT_LIVE), "Outbound: LinkRTC stops: CANCEL or BYE."),
    _f("OpInDialogRequest", "answer", _in("event", "confirmed"),
       "Outbound: other in-dialog requests: INFO and OPTIONS 200, others 501."),
]

#: Operators first in the dialling states of an application's trunk call
#: (L{linkrtc.call.registry.buildApplicationDialMachine}).
dialFactories = [
    DialledVariantFactory("OpOutgoingAnswered", "outbound",
                          [("calling", "event", "first"), ("ringing", "event", "first")],
                          "API dial: 2xx: the application's call is answered: Idle, "
                          "on_dial_completed.", "dialVariant"),
    _f("OpApiCommon", "api", _in("event", "routing", "calling", "ringing"),
       "API dial: nop and drop while dialling."),
]

# The outbound-only operators are plugins too (the shared ones are already).
for _factory in outboundFactories:
    globals().setdefault(_factory.operatorName, _factory)
del _factory
