"""
The interfaces between LinkRTC's layers, and its extension points.

A layer talks to another only through these. Shapes of messages, units and
sources are given in each docstring. The media seam's interfaces are
defined in L{linkrtc.mediainterfaces} and given here too.
"""

from zope.interface import Attribute, Interface

from linkrtc.mediainterfaces import (
    IApplicationMediaSession,
    ICallAudio,
    IConference,
    IEarlyMediaSession,
    IMediaFactory,
    IMediaListener,
    IMediaSession,
    IOfferlessOutboundMediaSession,
    IOutboundMediaSession,
    IPhoneMediaSession,
    IReofferMediaSession,
    IResumableMediaSession,
)

# --------------------------------------------------------------------------
# SIP stack (linkrtc.sip): the user-agent core hands calls up through these.
# --------------------------------------------------------------------------


class ISIPServerLeg(Interface):
    """
    The SIP side of one incoming call: a server INVITE transaction and,
    once a 2xx is sent, its dialog (RFC 3261 §13.3, §12.1.1).

    Implemented by L{linkrtc.sip.invite.InviteServerLeg}; the call engine
    drives it. All methods return at once; none raise for network errors
    (those come back through L{ISIPLegListener.legTerminated}).
    """

    request = Attribute("The initial INVITE, a L{linkrtc.sip.message.Request}.")
    callId = Attribute("The Call-ID of the INVITE, C{str}.")
    localTag = Attribute("Our To tag (C{str}), chosen when the leg is made.")

    def setListener(listener):
        """
        Name who hears this leg's events.

        @param listener: an L{ISIPLegListener} provider.
        """

    def sendProvisional(status, reason=None, body=None, contentType=None, headers=()):
        """
        Send a 1xx (101-199) on the INVITE transaction. 100 Trying is sent
        by the leg itself when it is made.

        @param status: C{int} 101..199 (180 Ringing, 183 Session Progress).
        @param body: C{bytes} or C{None} (SDP for early media).
        @param headers: extra C{(name, value)} pairs.
        """

    def sendFinal(status, reason=None, body=None, contentType=None, headers=()):
        """
        Send the final response. A 2xx makes the dialog; the leg then
        retransmits it until the ACK arrives (§13.3.1.4) and calls
        L{ISIPLegListener.legAckTimeout} if it never does (64*T1 seconds).
        A 3xx-6xx ends the leg once its transaction completes.
        """

    def sendBye():
        """
        End the confirmed dialog with BYE (§15.1.1).

        @return: a L{Deferred} firing with the final response
            (L{linkrtc.sip.message.Response}) or failing with
            L{linkrtc.error.TransactionTimeout}.
        """

    def sendRequest(method, body=None, contentType=None, headers=()):
        """
        Send an in-dialog request (INFO, re-INVITE, UPDATE...).

        @return: a L{Deferred} firing with the final response.
        """


class ISIPLegListener(Interface):
    """What a call hears from its L{ISIPServerLeg}."""

    def legCancelled(request):
        """
        CANCEL matched the INVITE (§9.2). The leg already answered the
        CANCEL with 200; the listener must send the INVITE its final
        response (487 Request Terminated).
        """

    def legAcknowledged(ack):
        """The ACK for our 2xx arrived (its body may carry SDP for an offerless INVITE)."""

    def legAckTimeout():
        """No ACK for our 2xx within 64*T1 seconds (§13.3.1.4): the caller should BYE."""

    def legRequestReceived(request, respond):
        """
        An in-dialog request arrived (BYE, re-INVITE, INFO, UPDATE, ...).

        @param respond: C{respond(status, reason=None, body=None,
            contentType=None, headers=())} sends the final response. BYE
            must be answered 200 (§15.1.2).
        """

    def legTerminated(reason):
        """
        The leg is gone for a reason other than the above (transport
        failure, transaction timeout). C{reason} is a short C{str}.
        """


class IInviteHandler(Interface):
    """Who the user-agent core gives each new (dialog-creating) INVITE to: the call manager."""

    def inviteReceived(leg):
        """
        A new INVITE arrived. The core has already sent 100 Trying.

        @param leg: an L{ISIPServerLeg}; the handler calls
            C{leg.setListener} before returning.
        """


# --------------------------------------------------------------------------
# Call engine (linkrtc.call): the state machine's extension points.
# --------------------------------------------------------------------------


class IState(Interface):
    """A state of the call state machine with three ordered operator queues (VOCAL)."""

    name = Attribute("The state's name, C{str}.")
    entryOperators = Attribute("C{list} of L{IOperator}, run when the state is entered.")
    operators = Attribute("C{list} of L{IOperator}, run for each event in order.")
    exitOperators = Attribute("C{list} of L{IOperator}, run when the state is left.")


class IOperator(Interface):
    """
    One step of call handling (VOCAL's Operator, seed 004).
    """

    name = Attribute("Unique name, C{str}, for logs and configuration.")

    def process(call, event):
        """
        Look at C{event} for C{call}.

        @return: the next state (an L{IState} or its name) to move the call
            there, or C{None} to let the next operator look. Entry and exit
            operators' results are ignored.
        """


class IOperatorFactory(Interface):
    """
    A plugin that builds operators; found with
    C{twisted.plugin.getPlugins(IOperatorFactory, linkrtc.plugins)}.
    """

    operatorName = Attribute("Name used in configuration and C{--operator}, C{str}.")
    operatorHelp = Attribute("One paragraph for C{--help-operators}.")
    argStringFormat = Attribute("What the optional C{NAME:ARG} argument means.")
    placements = Attribute(
        "Sequence of C{(stateName, queue)} pairs, C{queue} one of "
        "C{'entry'}, C{'event'}, C{'exit'}: where the operator goes."
    )

    def buildOperator(argString):
        """
        @param argString: the text after C{NAME:} or C{None}.
        @return: a new L{IOperator} provider.
        """


# --------------------------------------------------------------------------
# Clients (linkrtc.signalling) and the application (linkrtc.api).
# --------------------------------------------------------------------------


class IClientConnection(Interface):
    """One connected WebRTC client (a WebSocket connection)."""

    clientName = Attribute("The registered name (C{str}) or C{None} before C{register}.")

    def sendMessage(message):
        """Send one JSON message, given as a C{dict} with a C{"type"} key."""


class IClientDirectory(Interface):
    """Who is connected under which name."""

    def connectionsFor(name):
        """@return: a C{list} of L{IClientConnection} registered as C{name} (maybe empty)."""


class IClientMessageHandler(Interface):
    """Who gets the clients' call messages once they are validated: the call manager."""

    def clientMessageReceived(connection, message):
        """
        A validated message other than C{register}.

        @param connection: the L{IClientConnection} it came on.
        @param message: the decoded C{dict}; its fields were checked by the
            signalling layer against docs/signalling.rst.
        """

    def clientLost(connection):
        """A registered connection closed; its calls end (480 before answer, BYE after)."""


class IResumeHandler(Interface):
    """
    An L{IClientMessageHandler} whose answered calls outlive a lost
    connection for the resume grace period (C{--resume-seconds}), so that
    the client may pick them up again from a new connection
    (docs/signalling.rst, "Resuming after a reload").
    """

    def clientResumed(lost, connection):
        """
        C{connection} registered with the resume token of C{lost} (a
        connection that closed, or was just taken over): the calls waiting
        for C{lost} may now be resumed by C{connection} (its C{resume}
        messages).

        @return: a C{list} of C{dict}s, one per such call: C{{"call": ID,
            "state": PUBLISHED_STATE, "direction": "inbound"|"outbound"}}
            (empty when none waits).
        """


class IApplication(Interface):
    """
    The user's application server as the call engine sees it: the webhook
    (L{linkrtc.api.webhook.WebhookApplication}) or the embedded default
    (route to the client named by the Request-URI user).
    """

    def incoming(info):
        """
        Ask who takes a new incoming call (seed 000 step 1.3).

        @param info: C{dict} of the webhook's C{incoming} event (C{call},
            C{from}, C{to}, C{caller}, C{callee}, C{headers}).
        @return: a L{Deferred} firing with a decision C{dict}:
            C{{"action": "route", "client": NAME}} or
            C{{"action": "reject", "status": INT}}. It never fails: a
            timeout or error is turned into C{reject} with status 503.
        """

    def notify(event):
        """
        Tell the application something (C{state}, C{dtmf}, C{cdr} events);
        fire and forget, failures are logged.

        @param event: C{dict} with an C{"event"} key.
        """


# --------------------------------------------------------------------------
# Outbound calls (linkrtc.sip.outbound, linkrtc.call.outbound).
# --------------------------------------------------------------------------


class ISIPClientLeg(Interface):
    """
    The SIP side of one outgoing call: an INVITE we send (RFC 3261 §13.2)
    and, once a 2xx arrives, its dialog (§12.1.2). Implemented by
    L{linkrtc.sip.outbound.InviteClientLeg}. It answers 401/407 with the
    credentials it holds (once per nonce), follows 3xx once per target,
    ACKs every 2xx itself (RFC 6026) and CANCELs on L{cancel}.
    """

    request = Attribute("The last INVITE sent (L{linkrtc.sip.message.Request}) or C{None}.")
    callId = Attribute("The Call-ID, C{str}.")
    localTag = Attribute("Our From tag, C{str}.")
    dialog = Attribute("The L{linkrtc.sip.dialog.Dialog} once a 2xx arrived, else C{None}.")

    def setListener(listener):
        """@param listener: an L{ISIPClientLegListener}."""

    def start():
        """Send the INVITE."""

    def cancel():
        """
        Give up before the final response: CANCEL (§9.1) once a provisional
        response has arrived; a 2xx that still comes is ACKed and BYEd. The
        listener hears nothing more.
        """

    def sendBye():
        """End the confirmed dialog. @return: L{Deferred} with the final response."""

    def sendRequest(method, body=None, contentType=None, headers=()):
        """
        Send a request in the dialog (INFO, or a re-INVITE, whose 2xx the
        leg ACKs itself). @return: L{Deferred} with the final response.
        """


class ISIPClientLegListener(Interface):
    """What an outgoing call hears from its L{ISIPClientLeg}."""

    def legProgress(response):
        """A provisional response 101-199 (C{response.body} may hold early-media SDP)."""

    def legAnswered(response):
        """A 2xx made the dialog; the leg has sent the ACK already."""

    def legFailed(status, reason, response):
        """
        The INVITE failed: C{status} (C{int}: the final status, 408 for no
        answer at all, 503 for a transport failure), C{reason} (C{str}),
        C{response} (the final L{Response} or C{None}).
        """

    def legRequestReceived(request, respond):
        """An in-dialog request (BYE, re-INVITE, INFO...); see L{ISIPLegListener}."""

    def legTerminated(reason):
        """The confirmed dialog is gone for another reason (timeout, 481). C{reason}: C{str}."""


class IOutgoingApplication(Interface):
    """An L{IApplication} that also decides outbound calls (the webhook's C{outgoing})."""

    def outgoing(info):
        """
        Ask where a client's outbound call goes.

        @param info: C{dict}: C{call}, C{client}, C{to}, C{ref}.
        @return: a L{Deferred} firing with C{{"action": "route", "trunk":
            NAME or None, ...}} or C{{"action": "reject", "status": INT}};
            never fails (a failure becomes C{reject} 503).
        """




# --------------------------------------------------------------------------
# Scale-out (linkrtc.cluster).
# --------------------------------------------------------------------------


class ILocationStore(Interface):
    """
    Where a cluster's nodes publish their clients (docs/scaling.rst):
    Redis (L{linkrtc.cluster.store.RedisLocationStore}). Every method
    returns a L{Deferred}; a failure (server unreachable) is the caller's
    to log.
    """

    def publish(nodeId, address, names, expiresAt, ttl):
        """
        Say that node C{nodeId}, reached over SIP at C{address}
        (C{"HOST:PORT"}), holds connections for C{names} until
        C{expiresAt} (UNIX seconds); keys expire after C{ttl} seconds.
        """

    def withdraw(nodeId, name):
        """Node C{nodeId} no longer holds a connection for C{name}."""

    def locate(name, now):
        """
        @return: a L{Deferred} firing with a C{list} of C{(nodeId,
            address)} of the nodes holding C{name} whose entry expires
            after C{now} (UNIX seconds), freshest first (maybe empty).
        """

    def close():
        """Close the connections to the store."""


class IClusterDirectory(IClientDirectory):
    """
    An L{IClientDirectory} shared by the nodes of a cluster: it also knows
    which other node holds a name's connections.
    """

    nodeId = Attribute("This node's id, C{str}.")

    def locate(name):
        """
        @return: a L{Deferred} firing with the SIP address C{"HOST:PORT"}
            of another live node holding a connection for C{name}, or
            C{None}; it never fails (a store error gives C{None}).
        """


__all__ = [
    "IApplication",
    "IApplicationMediaSession",
    "ICallAudio",
    "IClientConnection",
    "IClientDirectory",
    "IClientMessageHandler",
    "IClusterDirectory",
    "IConference",
    "IEarlyMediaSession",
    "IInviteHandler",
    "ILocationStore",
    "IMediaFactory",
    "IMediaListener",
    "IMediaSession",
    "IOfferlessOutboundMediaSession",
    "IOperator",
    "IOperatorFactory",
    "IOutboundMediaSession",
    "IOutgoingApplication",
    "IPhoneMediaSession",
    "IReofferMediaSession",
    "IResumableMediaSession",
    "IResumeHandler",
    "ISIPClientLeg",
    "ISIPClientLegListener",
    "ISIPLegListener",
    "ISIPServerLeg",
    "IState",
]
