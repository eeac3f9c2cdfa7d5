# -*- test-case-name: linkrtc.call.test -*-
"""
Public fakes for testing LinkRTC's call engine and your own operators.

Each fake provides its interface (check with C{verifyObject}) and records
what it was asked to do. L{CallHarness} puts them together with a
L{twisted.internet.task.Clock} and a real L{linkrtc.call.manager.CallManager}::

    h = CallHarness()                       # or CallHarness(operators=["my.op:arg"])
    alice = h.connect("alice")
    call, leg = h.invite(to="sip:alice@example.com")
    h.application.decide(call, {"action": "route", "client": "alice"})
    h.clientSays(alice, "ringing", call)
    h.clientSays(alice, "accept", call, sdp=ANSWER)
    assert leg.finals[-1].status == 200
    assert h.states(call) == ["pending", "calling", "ringing", "answering", "confirmed"]
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface import implementer

from linkrtc.interfaces import (
    IApplication,
    IClientConnection,
    IClientDirectory,
    IMediaFactory,
    IMediaSession,
    IReofferMediaSession,
    IResumableMediaSession,
    ISIPServerLeg,
)

#: A small SDP offer, as a SIP phone sends it (C{bytes}).
SIP_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)

#: A small SDP answer, as a WebRTC client sends it (C{str}).
CLIENT_ANSWER = (
    "v=0\r\no=- 2 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    "m=audio 50000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


# -- SIP ---------------------------------------------------------------------


class FakeURI:
    """
    A SIP URI good enough for the call engine: C{scheme:user@host}.

    @ivar user: the user part or C{None}; @ivar host: the host.
    """

    def __init__(self, text):
        self.text = text
        scheme, _, rest = text.partition(":")
        self.scheme = scheme
        userHost = rest.split(";")[0]
        user, at, host = userHost.partition("@")
        self.user = user if at else None
        self.host = host if at else user

    def __str__(self):
        return self.text


class FakeNameAddr:
    """A name-addr: C{.uri} (a L{FakeURI}) and C{.tag}."""

    def __init__(self, uri, tag=None):
        self.uri = FakeURI(uri) if isinstance(uri, str) else uri
        self.tag = tag

    def __str__(self):
        return f"<{self.uri}>" + (f";tag={self.tag}" if self.tag else "")


class FakeHeaders:
    """Ordered headers: C{items()}, C{get(name)}."""

    def __init__(self, pairs=()):
        self._pairs = list(pairs)

    def items(self):
        return list(self._pairs)

    def get(self, name, default=None):
        for k, v in self._pairs:
            if k.lower() == name.lower():
                return v
        return default


class FakeRequest:
    """
    A SIP request with the attributes the call engine reads: C{method},
    C{uri}, C{fromAddr}, C{toAddr}, C{body} (C{bytes}), C{contentType},
    C{headers}.
    """

    def __init__(self, method, uri="sip:alice@example.com", fromURI="sip:bob@192.0.2.10",
                 toURI=None, body=b"", contentType=None, headers=()):
        self.method = method
        self.uri = FakeURI(uri)
        self.fromAddr = FakeNameAddr(fromURI, tag="from-tag")
        self.toAddr = FakeNameAddr(toURI or uri)
        self.body = body
        self.contentType = contentType or ("application/sdp" if body else None)
        self.headers = FakeHeaders([("From", str(self.fromAddr)), ("To", str(self.toAddr))]
                                   + list(headers))
        self.callId = "fake-call-id@192.0.2.10"


class SentResponse:
    """What a fake leg was asked to send: C{status}, C{reason}, C{body}, C{contentType}."""

    def __init__(self, status, reason=None, body=None, contentType=None, headers=()):
        self.status = status
        self.reason = reason
        self.body = body
        self.contentType = contentType
        self.headers = tuple(headers)

    def __repr__(self):
        return f"<SentResponse {self.status}>"


class FakeResponse:
    """
    A SIP response as a leg's C{sendRequest} fires with it: C{status},
    C{reason}, C{body} (C{bytes}).
    """

    def __init__(self, status, body=b"", reason=None):
        self.status = status
        self.body = body
        self.reason = reason

    def __repr__(self):
        return f"<FakeResponse {self.status}>"


@implementer(ISIPServerLeg)
class FakeServerLeg:
    """
    An L{ISIPServerLeg} that records what the call engine does.

    @ivar provisionals: L{SentResponse}s sent with C{sendProvisional}.
    @ivar finals: L{SentResponse}s sent with C{sendFinal}.
    @ivar byes: the L{Deferred}s returned by C{sendBye} (one per BYE).
    @ivar requests: C{(method, body, contentType, Deferred)} of C{sendRequest}.
    @ivar responses: C{{method: [SentResponse]}} answers to in-dialog
        requests made with L{receive}.
    """

    def __init__(self, request=None, callId="fake-call-id@192.0.2.10", localTag="ltag"):
        self.request = request if request is not None else FakeRequest("INVITE", body=SIP_OFFER)
        self.callId = callId
        self.localTag = localTag
        self.listener = None
        self.provisionals = []
        self.finals = []
        self.byes = []
        self.requests = []
        self.responses = {}

    def setListener(self, listener):
        self.listener = listener

    def sendProvisional(self, status, reason=None, body=None, contentType=None, headers=()):
        self.provisionals.append(SentResponse(status, reason, body, contentType, headers))

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        if self.finals:
            raise AssertionError(f"second final response {status} after {self.finals[0].status}")
        self.finals.append(SentResponse(status, reason, body, contentType, headers))

    def sendBye(self):
        d = defer.Deferred()
        self.byes.append(d)
        return d

    def sendRequest(self, method, body=None, contentType=None, headers=()):
        d = defer.Deferred()
        self.requests.append((method, body, contentType, d))
        return d

    # -- driving the listener, as the SIP side would --

    @property
    def finalStatus(self):
        """The status of the final response sent, or C{None}."""
        return self.finals[0].status if self.finals else None

    def receive(self, method, body=b"", contentType=None):
        """
        An in-dialog request from the SIP side (BYE, INVITE, INFO, ...).

        @return: the C{list} its responses are recorded in.
        """
        request = FakeRequest(method, body=body, contentType=contentType)
        answers = self.responses.setdefault(method, [])

        def respond(status, reason=None, body=None, contentType=None, headers=()):
            answers.append(SentResponse(status, reason, body, contentType, headers))

        self.listener.legRequestReceived(request, respond)
        return answers

    def cancel(self):
        """CANCEL from the SIP side (the leg answered it 200)."""
        self.listener.legCancelled(FakeRequest("CANCEL"))

    def ack(self, body=b""):
        """The ACK for our 2xx."""
        self.listener.legAcknowledged(FakeRequest("ACK", body=body))


# -- Clients -----------------------------------------------------------------


@implementer(IClientConnection)
class FakeClientConnection:
    """
    An L{IClientConnection} recording what it is sent.

    @ivar messages: the C{dict}s sent, in order.
    @ivar broken: when C{True}, C{sendMessage} raises (a dead connection).
    """

    def __init__(self, clientName=None, broken=False):
        self.clientName = clientName
        self.messages = []
        self.broken = broken

    def sendMessage(self, message):
        if self.broken:
            raise ConnectionError("connection lost")
        self.messages.append(message)

    def ofType(self, kind):
        """@return: the messages sent with C{"type"} C{kind}."""
        return [m for m in self.messages if m.get("type") == kind]


@implementer(IClientDirectory)
class FakeClientDirectory:
    """An L{IClientDirectory}: C{add(connection)}, C{remove(connection)}."""

    def __init__(self):
        self.connections = []

    def add(self, connection):
        self.connections.append(connection)

    def remove(self, connection):
        self.connections = [c for c in self.connections if c is not connection]

    def connectionsFor(self, name):
        return [c for c in self.connections if c.clientName == name]


# -- Application -------------------------------------------------------------


@implementer(IApplication)
class FakeApplication:
    """
    An L{IApplication} whose decisions the test gives.

    @ivar incomings: the C{incoming} info C{dict}s, in order.
    @ivar pending: C{dict} of call id to the unfired decision L{Deferred}.
    @ivar notifications: every C{notify} C{dict}, in order.
    @ivar autoDecision: when set, a function C{info -> decision} answering
        at once (C{None}: the test calls L{decide}).
    """

    def __init__(self, autoDecision=None):
        self.incomings = []
        self.pending = {}
        self.notifications = []
        self.autoDecision = autoDecision

    def incoming(self, info):
        self.incomings.append(info)
        if self.autoDecision is not None:
            return defer.succeed(self.autoDecision(info))
        d = defer.Deferred()
        self.pending[info["call"]] = d
        return d

    def decide(self, call, decision):
        """Fire the decision for C{call} (a L{Call} or its id)."""
        callId = getattr(call, "id", call)
        self.pending.pop(callId).callback(decision)

    def notify(self, event):
        self.notifications.append(event)

    def events(self, kind, call=None):
        """@return: the notifications with C{"event"} C{kind} (for C{call} if given)."""
        callId = getattr(call, "id", call)
        return [e for e in self.notifications
                if e.get("event") == kind and (callId is None or e.get("call") == callId)]

    def states(self, call=None):
        """@return: the C{state} values notified (for C{call} if given), in order."""
        return [e["state"] for e in self.events("state", call)]


# -- Media -------------------------------------------------------------------


@implementer(IMediaSession)
class FakeMediaSession:
    """
    An L{IMediaSession} that passes SDP through (like passthrough) and
    records calls.

    @ivar calls: C{(method, argument)} tuples, in order.
    @ivar manual: when C{True}, each method returns an unfired L{Deferred}
        kept in C{deferreds} (C{(method, Deferred)}) for the test to fire.
    @ivar closed: C{True} after C{close}.
    @ivar digits: the digits given to C{sendDigits}.
    """

    def __init__(self, callId=None, listener=None, manual=False):
        self.callId = callId
        self.listener = listener
        self.manual = manual
        self.calls = []
        self.deferreds = []
        self.digits = []
        self.closed = False
        self.hold = False

    def _result(self, method, value):
        if self.manual:
            d = defer.Deferred()
            self.deferreds.append((method, d))
            return d
        return defer.succeed(value)

    def clientOffer(self, sipOffer):
        self.calls.append(("clientOffer", sipOffer))
        return self._result("clientOffer", sipOffer.decode() if sipOffer else None)

    def sipAnswer(self, clientSdp):
        self.calls.append(("sipAnswer", clientSdp))
        return self._result("sipAnswer", clientSdp.encode())

    def sipAckBody(self, sdp):
        self.calls.append(("sipAckBody", sdp))
        return self._result("sipAckBody", sdp.decode() if isinstance(sdp, bytes) else sdp)

    def sipReoffer(self, sdp):
        self.calls.append(("sipReoffer", sdp))
        return self._result("sipReoffer", (b"v=0 reanswer", self.hold))

    def sendDigits(self, digits):
        self.calls.append(("sendDigits", digits))
        self.digits.append(digits)
        return defer.succeed(None)

    def stats(self):
        return {"mode": "fake"}

    def close(self):
        self.calls.append(("close", None))
        self.closed = True
        return defer.succeed(None)


@implementer(IReofferMediaSession)
class FakeReofferMediaSession(FakeMediaSession):
    """
    A L{FakeMediaSession} that can also place calls and re-offer (like
    bridge mode): the client's hold becomes a re-INVITE.

    @ivar reofferSdp: C{bytes} returned by C{reoffer} (C{sendonly} or
        C{sendrecv} is added).
    @ivar answerHeld: what C{reofferAnswered} fires with, or C{None} for
        "the hold asked for".
    """

    reofferSdp = b"v=0\r\nm=audio 20000 RTP/AVP 0\r\n"
    answerHeld = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lastHold = None

    def sipOffer(self, clientOffer, codecs=None):
        self.calls.append(("sipOffer", clientOffer))
        return self._result("sipOffer", clientOffer.encode())

    def clientAnswer(self, sipAnswer):
        self.calls.append(("clientAnswer", sipAnswer))
        text = sipAnswer.decode() if isinstance(sipAnswer, bytes) else sipAnswer
        return self._result("clientAnswer", text)

    # L{FakeMediaSession}'s C{hold} attribute (what C{sipReoffer} says) is
    # C{farHold} here: C{hold} is L{IOutboundMediaSession.hold}.
    farHold = False

    def _setFarHold(self, value):
        self.farHold = value

    def _holdMethod(self, onHold):
        self.calls.append(("hold", onHold))
        return defer.succeed(None)

    hold = property(lambda self: self._holdMethod, _setFarHold)

    def sipReoffer(self, sdp):
        self.calls.append(("sipReoffer", sdp))
        return self._result("sipReoffer", (b"v=0 reanswer", self.farHold))

    def reoffer(self, hold):
        self.calls.append(("reoffer", hold))
        self._lastHold = hold
        direction = b"a=sendonly\r\n" if hold else b"a=sendrecv\r\n"
        return self._result("reoffer", self.reofferSdp + direction)

    def reofferAnswered(self, sdp):
        self.calls.append(("reofferAnswered", sdp))
        held = self._lastHold if self.answerHeld is None else self.answerHeld
        return self._result("reofferAnswered", held)


@implementer(IResumableMediaSession)
class FakeResumableMediaSession(FakeReofferMediaSession):
    """
    A L{FakeReofferMediaSession} that rebuilds the client's leg (like
    bridge mode): C{clientResumed} answers C{"answer to " + offer}, or
    fails with L{linkrtc.error.MediaError} for an offer without C{v=0}.

    @ivar detached: C{True} between C{clientDetached} and a resume.
    """

    detached = False

    def clientDetached(self):
        self.calls.append(("clientDetached", None))
        self.detached = True

    def clientResumed(self, clientOffer):
        from linkrtc.error import MediaError

        self.calls.append(("clientResumed", clientOffer))
        if not self.detached or not str(clientOffer).startswith("v=0"):
            return defer.fail(MediaError("offer not acceptable"))
        d = self._result("clientResumed", "answer to " + clientOffer)

        def attached(answer):
            self.detached = False
            return answer

        return d.addCallback(attached)


@implementer(IMediaFactory)
class FakeMediaFactory:
    """
    Makes L{FakeMediaSession}s (L{FakeReofferMediaSession}s with
    C{reoffer=True}, L{FakeResumableMediaSession}s with C{resumable=True}).

    @ivar sessions: C{dict} of call id to session.
    """

    name = "fake"

    def __init__(self, manual=False, reoffer=False, resumable=False):
        self.manual = manual
        self.reoffer = reoffer
        self.resumable = resumable
        self.sessions = {}

    def newSession(self, callId, listener):
        kind = FakeReofferMediaSession if self.reoffer else FakeMediaSession
        if self.resumable:
            kind = FakeResumableMediaSession
        session = kind(callId, listener, manual=self.manual)
        self.sessions[callId] = session
        return session


# -- The harness -----------------------------------------------------------------


class CallHarness:
    """
    A L{CallManager} on fakes and a L{Clock}.

    @ivar clock: the L{Clock}.
    @ivar directory: a L{FakeClientDirectory}.
    @ivar application: a L{FakeApplication}.
    @ivar mediaFactory: a L{FakeMediaFactory} (or the one given).
    @ivar manager: the L{linkrtc.call.manager.CallManager}.
    @ivar cdrs: the C{end} CDR C{dict}s written, in order.
    @ivar startCdrs: the C{start} CDR C{dict}s written (one per answered
        call), in order.
    """

    def __init__(self, operators=(), ringTimeout=60.0, mediaFactory=None, application=None,
                 machine=None, manualMedia=False, clock=None, callControl=None,
                 resumeSeconds=0.0):
        from linkrtc.call.call import CallServices
        from linkrtc.call.manager import CallManager
        from linkrtc.call.registry import buildMachine

        self.clock = clock if clock is not None else Clock()
        self.directory = FakeClientDirectory()
        self.application = application if application is not None else FakeApplication()
        self.mediaFactory = mediaFactory or FakeMediaFactory(manual=manualMedia)
        self.cdrs = []
        self.startCdrs = []
        self.machine = machine if machine is not None else buildMachine(operators)
        services = CallServices(self.clock, self.directory, self.application,
                                self.mediaFactory, _ListCDRWriter(self.cdrs, self.startCdrs),
                                ringTimeout, callControl=callControl,
                                resumeSeconds=resumeSeconds)
        self.manager = CallManager(self.machine, services)

    def connect(self, name):
        """@return: a new L{FakeClientConnection} registered as C{name}."""
        connection = FakeClientConnection(name)
        self.directory.add(connection)
        return connection

    def disconnect(self, connection):
        """C{connection} closes: the directory forgets it and the manager is told."""
        self.directory.remove(connection)
        self.manager.clientLost(connection)

    def invite(self, to="sip:alice@example.com", fromURI="sip:bob@192.0.2.10", body=SIP_OFFER,
               request=None):
        """
        A new INVITE arrives.

        @return: C{(call, leg)}.
        """
        if request is None:
            request = FakeRequest("INVITE", uri=to, fromURI=fromURI, body=body)
        leg = FakeServerLeg(request)
        call = self.manager.inviteReceived(leg)
        return call, leg

    def clientSays(self, connection, kind, call, **fields):
        """C{connection} sends C{{"type": kind, "call": id, **fields}}."""
        message = {"type": kind, "call": getattr(call, "id", call)}
        message.update(fields)
        self.manager.clientMessageReceived(connection, message)

    def route(self, call, client="alice"):
        """The application routes C{call} to C{client}."""
        self.application.decide(call, {"action": "route", "client": client})

    def answer(self, client="alice", sdp=CLIENT_ANSWER, body=SIP_OFFER):
        """
        Run a call up to C{confirmed} with the ACK received.

        @return: C{(call, leg, connection)}.
        """
        connection = self.connect(client)
        call, leg = self.invite(to=f"sip:{client}@example.com", body=body)
        self.route(call, client)
        self.clientSays(connection, "ringing", call)
        self.clientSays(connection, "accept", call, sdp=sdp)
        leg.ack(b"" if body else SIP_OFFER)
        return call, leg, connection

    def states(self, call):
        """@return: the names of the states C{call} went through, in order."""
        return [t.toState for t in call.trace]

    def media(self, call):
        """@return: the call's L{FakeMediaSession}."""
        return self.mediaFactory.sessions[call.id]

    def replay(self, call):
        """
        Feed every event C{call} processed into a fresh call on a fresh
        harness whose application and media never answer by themselves (the
        recorded decisions and media results drive it instead).

        @return: the new call (compare its C{trace} with the original's).
        """
        fresh = CallHarness(machine=self.machine, manualMedia=True)
        for connection in call.offered:
            fresh.directory.add(connection)
        leg = FakeServerLeg(call.request)
        from linkrtc.call.call import Call

        copy = Call(leg, fresh.machine, fresh.manager.services,
                    onRelease=fresh.manager._released, callId=call.id)
        fresh.manager.calls[copy.id] = copy
        leg.setListener(copy)
        events = list(call.history)
        copy.start()  # replays events[0], the INVITE
        for event in events[1:]:
            copy.dispatch(event)
        return copy


class _ListCDRWriter:
    """A CDR writer that appends each C{end} record to a list, C{start} ones to another."""

    def __init__(self, records, starts):
        self.records = records
        self.starts = starts

    def write(self, record):
        (self.starts if record.get("record") == "start" else self.records).append(record)
