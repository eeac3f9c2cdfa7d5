# -*- test-case-name: linkrtc.sip.test.test_messaging -*-
"""
Instant messages between registered SIP phones and LinkRTC's JSON clients
(RFC 3428 SIP MESSAGE; the client protocol's C{message} type,
docs/signalling.rst).

SIP -> client: a MESSAGE whose Request-URI user names a connected client
is handed to every connection of that name as C{{"type": "message",
"from": NAME, "text": TEXT}} and answered 200 (delivered); one for a
registered SIP user is relayed to its contacts through their flows and
answered 202 (accepted for delivery, RFC 3428 §7). Errors: 404 for a name
nobody uses, 480 for a known SIP user with no contact, 413 for a body over
L{Messenger.maxSize} octets, 415 (with C{Accept: text/plain}) for any other
content type.

Client -> SIP: C{{"type": "message", "to": NAME, "text": TEXT, "ref":
REF}} goes to the connections of NAME, else as a MESSAGE to each contact
of NAME (first 2xx wins); the sender gets C{{"type": "message-sent",
"to": NAME, "status": 200 or 202, "ref": REF}} or C{{"type": "error",
"code": 404/413/480/..., "field": "to", "ref": REF}}.
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import SIPParseError
from linkrtc.signalling.messages import isValidClientName
from linkrtc.sip.dialog import newTag
from linkrtc.sip.message import Headers, Request
from linkrtc.sip.uri import SIPURI, NameAddr

__all__ = ["Messenger", "DEFAULT_MAX_SIZE"]

log = Logger()

#: The largest message body relayed, octets (RFC 3428 §8: 1300 octets keep
#: a MESSAGE inside one UDP datagram; we allow more over streams' sake and
#: answer 413 above this).
DEFAULT_MAX_SIZE = 4096

TEXT_PLAIN = "text/plain"


def _mediaType(value):
    return (value or "").split(";", 1)[0].strip().lower()


def _charset(value):
    for part in (value or "").split(";")[1:]:
        name, _, val = part.partition("=")
        if name.strip().lower() == "charset":
            return val.strip().strip('"') or "utf-8"
    return "utf-8"


class Messenger:
    """
    Relays instant messages (see the module docstring).

    @param clock: an C{IReactorTime}.
    @param directory: the L{linkrtc.signalling.directory.ClientDirectory}
        (JSON connections by name).
    @param bindings: the L{linkrtc.sip.bindings.BindingTable}.
    @param users: the L{linkrtc.sip.registrar.SIPUserStore} (names known
        even while offline: 480 rather than 404).
    @param maxSize: octets, see L{DEFAULT_MAX_SIZE}.
    @param userAgent: the L{linkrtc.sip.useragent.UserAgent} that sends
        MESSAGEs, or C{None} until L{setUserAgent} (the user agent is made
        after the registrar that holds this messenger).
    """

    def __init__(self, clock, directory, bindings, users, maxSize=DEFAULT_MAX_SIZE,
                 userAgent=None):
        self.clock = clock
        self.directory = directory
        self.bindings = bindings
        self.users = users
        self.maxSize = maxSize
        self.userAgent = userAgent

    def setUserAgent(self, userAgent):
        """Name the user agent MESSAGEs go out through."""
        self.userAgent = userAgent

    # -- SIP -> client ---------------------------------------------------------------

    def sipMessageReceived(self, request, respond, authenticatedUser=None):
        """
        An out-of-dialog MESSAGE (already authenticated if it claims a SIP
        user). Answers it: see the module docstring.

        @param respond: C{respond(status, reason=None, headers=())}.
        @param authenticatedUser: the SIP user it comes from, or C{None}.
        """
        body = request.body or b""
        contentType = request.headers.get("Content-Type")
        if len(body) > self.maxSize:
            self._count("to_client", "refused")
            respond(413, "Message Too Large")
            return
        if body and _mediaType(contentType or TEXT_PLAIN) != TEXT_PLAIN:
            self._count("to_client", "refused")
            respond(415, headers=[("Accept", TEXT_PLAIN)])
            return
        try:
            text = body.decode(_charset(contentType), "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        target = getattr(request.uri, "user", None)
        sender = authenticatedUser or self._senderOf(request)
        if not isValidClientName(target):
            self._count("to_client", "refused")
            respond(404)
            return
        message = {"type": "message", "from": sender, "text": text}
        connections = self.directory.connectionsFor(target)
        delivered = 0
        for connection in connections:
            try:
                if connection.sendMessage(dict(message)) is not False:
                    delivered += 1
            except Exception:
                log.failure("message to client {name} failed", name=target)
        if delivered:
            self._count("to_client", "delivered")
            log.info("message from {sender} delivered to client {name}", sender=sender,
                     name=target)
            respond(200)
            return
        if self.bindings.bindingsFor(target):
            self.sendToPhones(sender, target, body, contentType or TEXT_PLAIN)
            self._count("to_sip", "delivered")
            respond(202)
            return
        self._count("to_client", "refused")
        respond(480 if target in self.users else 404)

    def _senderOf(self, request):
        try:
            uri = request.fromAddr.uri
        except SIPParseError:
            return "anonymous"
        return getattr(uri, "user", None) or str(uri)

    # -- client -> SIP -----------------------------------------------------------------

    def clientMessage(self, connection, message):
        """
        A client's C{message} (validated by
        L{linkrtc.signalling.messages.parseClientMessage}); the reply goes
        to C{connection}.

        @return: a L{Deferred} firing once the reply is sent.
        """
        target, text, ref = message["to"], message["text"], message.get("ref")
        sender = connection.clientName
        body = text.encode("utf-8")
        if len(body) > self.maxSize:
            return defer.succeed(self._reply(connection, target, ref, 413,
                                             "message too large"))
        relayed = {"type": "message", "from": sender, "text": text}
        delivered = 0
        for other in self.directory.connectionsFor(target):
            try:
                if other.sendMessage(dict(relayed)) is not False:
                    delivered += 1
            except Exception:
                log.failure("message to client {name} failed", name=target)
        if delivered:
            self._count("to_client", "delivered")
            return defer.succeed(self._reply(connection, target, ref, 200))
        if not self.bindings.bindingsFor(target):
            status = 480 if target in self.users else 404
            self._count("to_sip", "refused")
            return defer.succeed(self._reply(
                connection, target, ref, status,
                "offline" if status == 480 else "nobody has this name"))
        d = self.sendToPhones(sender, target, body, "text/plain;charset=UTF-8")
        d.addCallback(lambda status: self._reply(
            connection, target, ref, status,
            None if status < 300 else "the phone refused the message"))
        return d

    def sendToPhones(self, sender, target, body, contentType):
        """
        Send a MESSAGE to every contact of C{target}, each through its flow.

        @return: a L{Deferred} firing with the best final status (C{int}:
            the first 2xx, else the lowest failure; 408 when none answered).
        """
        bindings = self.bindings.bindingsFor(target)
        if not bindings or self.userAgent is None:
            return defer.succeed(480)
        waits = [self._sendOne(sender, b, body, contentType) for b in bindings]
        d = defer.DeferredList(waits, consumeErrors=True)

        def best(results):
            statuses = [r for ok, r in results if ok]
            good = [s for s in statuses if 200 <= s < 300]
            status = good[0] if good else (min(statuses) if statuses else 408)
            self._count("to_sip", "delivered" if good else "refused")
            return status

        return d.addCallback(best)

    def _sendOne(self, sender, binding, body, contentType):

        destination = binding.flow.destination()
        local = self.userAgent.localContact(destination).uri
        fromAddr = NameAddr(SIPURI("sip", user=sender, host=local.host, port=local.port),
                            params={"tag": newTag()})
        toAddr = NameAddr(SIPURI("sip", user=binding.user, host=local.host, port=local.port))
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", str(fromAddr))
        headers.add("To", str(toAddr))
        headers.add("Call-ID", "%s@linkrtc" % (newTag() + newTag(),))
        headers.add("CSeq", "1 MESSAGE")
        headers.add("Content-Type", contentType)
        request = Request("MESSAGE", binding.contact.uri, headers)
        request.body = bytes(body)
        d = self.userAgent.sendRequest(request, destination)
        d.addCallback(lambda response: response.status)
        d.addErrback(lambda f: 408)
        return d

    def _reply(self, connection, target, ref, status, text=None):
        if 200 <= status < 300:
            reply = {"type": "message-sent", "to": target, "status": status}
        else:
            reply = {"type": "error", "code": status, "field": "to",
                     "message": text or "message not delivered"}
        if ref is not None:
            reply["ref"] = ref
        try:
            connection.sendMessage(reply)
        except Exception:
            log.failure("message reply to a client failed")
        return status

    def _count(self, direction, result):
        metrics.SIP_MESSAGES.labels(direction=direction, result=result).inc()
