"""
The documentation agrees with the code: every JSON example in docs/*.rst
(``.. code-block:: json`` blocks and the ``->`` / ``<-`` lines of the
sample sessions) is checked against what the code accepts or sends in a
unit-test call, and the ``.tac`` example of docs/trunks.rst runs.

- a client message (``type`` a client may send) must parse, and keep every
  field the example shows;
- a server message (other ``type``) and a webhook body (``event``) must
  have the same keys, with values of the same JSON types, as one message
  of the same kind (and ``state`` / ``record``) that the code sent in the
  calls below;
- a webhook decision (``action``) must be read whole by the webhook
  client.
"""

import json
import os
import re
import subprocess
import sys

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

import linkrtc
from linkrtc.api import webhook
from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.test.test_outbound import ANSWER, OFFER, TRUNKS, FakeClientLeg
from linkrtc.config import parseTrunks
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.signalling.messages import CLIENT_MESSAGE_TYPES, parseClientMessage
from linkrtc.signalling.protocol import SignallingFactory
from linkrtc.signalling.test.test_protocol import (
    HANDSHAKE,
    FakeHandler,
    FakeTransport,
    clientFrame,
    serverFrames,
)
from linkrtc.sip.bindings import BindingTable
from linkrtc.sip.messaging import Messenger
from linkrtc.sip.registrar import SIPUserStore
from linkrtc.testing import CLIENT_ANSWER, SIP_OFFER, CallHarness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__)))
DOCS = os.path.join(ROOT, "docs")

_ARROW = re.compile(r"^\s*(->|<-)\s*(\{.*)$")

#: The test trunks, the first allowing +49 as the documented examples dial it.
ALLOW_49 = [dict(TRUNKS[0], allow=["+49"])] + TRUNKS[1:]


def _blockAfter(lines, i):
    """The indented body of the directive at line C{i}, as text."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    body = []
    for line in lines[i + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return "\n".join(body)


def jsonExamples(path):
    """
    @return: C{(where, value)} for every JSON example of the .rst file at
        C{path}: C{code-block:: json} blocks and the objects on C{->} /
        C{<-} lines.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    name = os.path.basename(path)
    found = []
    for i, line in enumerate(lines):
        if line.strip() == ".. code-block:: json":
            found.append((f"{name}:{i + 1}", json.loads(_blockAfter(lines, i))))
            continue
        m = _ARROW.match(line)
        if m:
            value, _ = json.JSONDecoder().raw_decode(m.group(2))
            found.append((f"{name}:{i + 1}", value))
    return found


def allExamples():
    examples = []
    for name in sorted(os.listdir(DOCS)):
        if name.endswith(".rst"):
            examples.extend(jsonExamples(os.path.join(DOCS, name)))
    return examples


def _jsonType(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


#: Keys whose values are words from a fixed set: compared as values, not only as types.
ENUM_KEYS = frozenset({"type", "event", "state", "record", "call_dir", "dropped_by", "dir",
                       "proto", "mode", "action"})


def shape(message):
    """
    @return: the message's keys with their JSON types (and values, for
        L{ENUM_KEYS}), as a C{frozenset}; nested objects by their own shape.
    """
    out = set()
    for k, v in message.items():
        if k in ENUM_KEYS:
            out.add((k, _jsonType(v), v))
        elif isinstance(v, dict):
            out.add((k, "object", shape(v)))
        else:
            out.add((k, _jsonType(v), None))
    return frozenset(out)


def kindOf(message):
    """@return: what an example is compared by: C{type} or C{event}, and C{state} / C{record}."""
    head = ("type", message["type"]) if "type" in message else ("event", message.get("event"))
    return head + (message.get("state"), message.get("record"))


def _receivedMessage(example):
    """C{True} for an instant C{message} a client receives (it has C{from}), not sends."""
    return example.get("type") == "message" and "from" in example


class _Application(Resource):
    """The application behind the webhook: records every body, routes every call."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.bodies = []

    def render_POST(self, request):
        body = json.loads(request.content.read())
        self.bodies.append(body)
        request.setHeader(b"Content-Type", b"application/json")
        if body["event"] == "outgoing":
            return b'{"action": "route", "trunk": "pbx"}'
        return b'{"action": "route", "client": "alice"}'


class Produced:
    """What the code sends in a few unit-test calls, by kind."""

    def __init__(self, testCase):
        self.byKind = {}
        clock = Clock()
        clock.advance(1700000000)
        self.application = _Application()
        stub = StubTreq(self.application)
        app = webhook.WebhookApplication("http://app.example/hook", treq_client=stub,
                                         clock=clock)
        h = CallHarness(mediaFactory=PassthroughMediaFactory(), application=app)
        h.clock = clock
        legs = []

        def legFactory(**kwargs):
            legs.append(FakeClientLeg(**kwargs))
            return legs[-1]

        h.manager.dialer = OutboundDialer(None, parseTrunks(ALLOW_49), clock,
                                          legFactory=legFactory)
        # An incoming call: answered, DTMF, hold, unhold, hung up.
        alice = h.connect("alice")
        alice.peer = "tcp4:192.0.2.33:52710"  # the CDR's device (docs/webhooks.rst)
        call, leg = h.invite(body=SIP_OFFER)
        stub.flush()
        h.clientSays(alice, "ringing", call)
        h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        leg.ack(b"")
        leg.receive("INFO", body=b"Signal=5\r\nDuration=160\r\n",
                    contentType="application/dtmf-relay")
        h.clientSays(alice, "hold", call)
        h.clientSays(alice, "unhold", call)
        h.clientSays(alice, "dtmf", call, digits="12#")
        h.clientSays(alice, "nonsense", call)
        h.clientSays(alice, "hangup", call)
        # One cancelled while it rings.
        call, leg = h.invite(body=SIP_OFFER)
        stub.flush()
        h.clientSays(alice, "ringing", call)
        call.legCancelled(None)
        # An outgoing call with early media, answered and hung up.
        h.manager.clientMessageReceived(alice, {"type": "call", "to": "+4930987654",
                                                "sdp": OFFER, "ref": "tab1-1"})
        stub.flush()
        out = h.manager.calls[alice.ofType("calling")[-1]["call"]]
        legs[-1].progress(183, ANSWER)
        legs[-1].answer()
        h.clientSays(alice, "hangup", out)
        stub.flush()
        # Instant messages between two clients (linkrtc.sip.messaging).
        bob = h.connect("bob")
        messenger = Messenger(clock, h.directory, BindingTable(clock), SIPUserStore())
        messenger.clientMessage(alice, {"type": "message", "to": "bob", "text": "hi",
                                        "ref": "m1"})
        for message in alice.messages + bob.messages:
            self.add(message)
        for body in self.application.bodies:
            self.add(body)
        for record in h.startCdrs:
            self.add(record)
        for message in self.signalling(testCase):
            self.add(message)

    def signalling(self, testCase):
        """@return: what the WebSocket layer itself sends: registered, error, trace."""
        clock = Clock()
        directory = ClientDirectory(clock)
        factory = SignallingFactory(directory, FakeHandler(), clock=clock, resumeSeconds=10)
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = FakeTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        proto.makeConnection(transport)
        proto.dataReceived(HANDSHAKE)
        transport.clear()
        for message in ({"type": "register", "client": "alice", "trace": True},
                        {"type": "dtmf", "call": "c7f3a9e2", "digits": "x"}):
            proto.dataReceived(clientFrame(json.dumps(message)))
        directory.trace("c7f3a9e2", "in", "sip", "INVITE sip:alice@gw SIP/2.0\r\n", ["alice"])
        sent = [json.loads(payload) for _, payload in serverFrames(transport.value())]
        transport.clear()
        token = [m for m in sent if m["type"] == "registered"][0]["resume"]
        proto.dataReceived(clientFrame(json.dumps({"type": "register", "client": "alice",
                                                   "resume": token})))
        sent += [json.loads(payload) for _, payload in serverFrames(transport.value())]
        proto.connectionLost(Failure(ConnectionDone()))
        return sent

    def add(self, message):
        self.byKind.setdefault(kindOf(message), set()).add(shape(message))


class DocumentedJSONTests(SynchronousTestCase):
    """Every JSON example of docs/*.rst matches the code."""

    def setUp(self):
        if not os.path.isdir(DOCS):
            raise self.skipTest("not running from a source checkout")
        self.examples = allExamples()

    def test_found(self):
        """The examples are found (the test does not pass by finding none)."""
        names = {where.split(":")[0] for where, _ in self.examples}
        self.assertTrue({"signalling.rst", "webhooks.rst", "trunks.rst"} <= names, names)
        self.assertGreater(len(self.examples), 30)

    def test_clientMessages(self):
        """A client message in the docs parses and keeps every field shown."""
        checked = 0
        for where, example in self.examples:
            if example.get("type") not in CLIENT_MESSAGE_TYPES or _receivedMessage(example):
                continue
            parsed = parseClientMessage(json.dumps(example))
            self.assertEqual({k for k, v in example.items() if v is not None} - set(parsed),
                             set(), f"{where}: fields the code ignores")
            checked += 1
        self.assertGreater(checked, 10)

    def test_sentMessages(self):
        """A server message or webhook body in the docs has the shape of one the code sends."""
        produced = Produced(self)
        checked = 0
        problems = []
        for where, example in self.examples:
            if "action" in example or (example.get("type") in CLIENT_MESSAGE_TYPES - {"dtmf"}
                                       and not _receivedMessage(example)):
                continue
            checked += 1
            shapes = produced.byKind.get(kindOf(example))
            if not shapes:
                problems.append(f"{where}: the code sent no {kindOf(example)}")
            elif shape(example) not in shapes:
                problems.append(f"{where}: {sorted(map(str, shape(example)))} is not one of the"
                                f" shapes sent: {[sorted(map(str, s)) for s in shapes]}")
        self.assertEqual(problems, [], "\n\n".join(problems))
        self.assertGreater(checked, 15)

    def test_decisions(self):
        """A webhook decision in the docs is read whole by the webhook client."""
        checked = 0
        for where, example in self.examples:
            if "action" not in example:
                continue
            outgoing = "trunk" in example or "max_ring_seconds" in example
            read = (webhook._outgoingDecision if outgoing else webhook._decision)(
                json.dumps(example).encode("utf-8"))
            self.assertEqual(set(example) - set(read), set(), f"{where}: fields ignored")
            checked += 1
        self.assertGreaterEqual(checked, 4)


class TrunksTacTests(SynchronousTestCase):
    def test_tacSnippetRuns(self):
        """docs/trunks.rst's .tac example runs as shown and builds LinkRTC with its trunks."""
        from twisted.application.service import IServiceCollection

        path = os.path.join(DOCS, "trunks.rst")
        if not os.path.exists(path):
            raise self.skipTest("not running from a source checkout")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        [i] = [n for n, line in enumerate(lines) if line.startswith("The same in a ``.tac``")]
        while not lines[i].rstrip().endswith("::"):
            i += 1
        source = _blockAfter(lines, i)
        indent = min(len(x) - len(x.lstrip()) for x in source.splitlines() if x.strip())
        source = "\n".join(x[indent:] for x in source.splitlines())
        namespace = {"__file__": path}
        exec(compile(source, "trunks.tac", "exec"), namespace)
        children = list(IServiceCollection(namespace["application"]))
        self.assertEqual(len(children), 1)
        self.assertEqual([t.name for t in namespace["config"].trunks], ["pbx", "itsp"])
        self.assertEqual(namespace["config"].trunks[0].route["+4930123456"], "alice")


class ReadmeTests(SynchronousTestCase):
    def test_everyPageListed(self):
        """The README's documentation section names every docs/*.rst page but the index."""
        path = os.path.join(ROOT, "README.md")
        if not os.path.exists(path):
            raise self.skipTest("not running from a source checkout")
        with open(path, encoding="utf-8") as f:
            readme = f.read()
        section = readme[readme.index("## Documentation"):]
        pages = sorted(n for n in os.listdir(DOCS) if n.endswith(".rst") and n != "index.rst")
        self.assertEqual([p for p in pages if f"docs/{p}" not in section], [])
        for subject in ("trunk", "passthrough", "bridge", "linkrtc.js"):
            self.assertIn(subject, section)


class SphinxBuildTests(SynchronousTestCase):
    def test_buildsWithoutWarnings(self):
        """
        C{docs/} builds with Sphinx, warnings as errors: a malformed table
        or a broken reference fails here, not on the documentation site.
        """
        if not os.path.exists(os.path.join(DOCS, "conf.py")):
            raise self.skipTest("not running from a source checkout")
        try:
            import sphinx  # noqa: F401
        except ImportError:
            if os.environ.get("CI"):
                raise
            raise self.skipTest("sphinx is not installed (pip install '.[test]')")
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", DOCS, out],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
