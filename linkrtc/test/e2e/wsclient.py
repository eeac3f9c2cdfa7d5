"""
A scripted WebSocket client of LinkRTC for end-to-end tests and benchmarks.

It registers under a name and handles every ``incoming`` call by its
``--action``: ``answer`` (``ringing``, then ``accept`` with an SDP answer,
then ``hangup`` after ``--hangup-after`` seconds if given), ``reject``
(``--reason busy|decline``), ``ring`` (``ringing`` only), ``ignore``. Every
message received is printed as a JSON line on stdout, so the test can read
what the client saw. It exits after ``--calls`` calls ended (``dropped``) or
after ``--lifetime`` seconds.

With ``--dial NUMBER`` it places one outbound call instead once
registered: ``call`` with a fake SDP offer (passthrough media), then
``hangup`` ``--hangup-after`` seconds after ``confirmed`` (or
``--cancel-after`` seconds after ``calling``, before any answer), and
exits once the call is ``dropped``.

    python wsclient.py ws://127.0.0.1:8080/ws bob --action answer --calls 1
    python wsclient.py ws://127.0.0.1:8080/ws alice --dial 5551234 --hangup-after 1
"""

import argparse
import asyncio
import json
import sys

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

OFFER_SDP = (
    "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40002 RTP/AVP 111 0 8 101\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)

ANSWER_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)


class Client(WebSocketClientProtocol):
    options = None
    done = None

    def onOpen(self):
        self.ended = 0
        register = {"type": "register", "client": self.options.name}
        if self.options.token:
            register["token"] = self.options.token
        if self.options.trace:
            register["trace"] = True
        self.send(register)

    def send(self, message):
        self.sendMessage(json.dumps(message).encode())

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        print(json.dumps(message), flush=True)
        kind = message.get("type")
        o = self.options
        if o.dial:
            self.dialMessage(kind, message)
            return
        if kind == "incoming":
            call = message["call"]
            if o.action == "answer":
                self.send({"type": "ringing", "call": call})
                loop = asyncio.get_event_loop()
                loop.call_later(o.answer_after, self.accept, call, message.get("sdp"))
            elif o.action == "ring":
                self.send({"type": "ringing", "call": call})
            elif o.action == "reject":
                self.send({"type": "ringing", "call": call})
                self.send({"type": "reject", "call": call, "reason": o.reason})
        elif kind == "state" and message.get("state") == "dropped":
            self.ended += 1
            if o.calls and self.ended >= o.calls:
                self.sendClose()
        elif kind == "state" and message.get("state") == "confirmed" and o.digits:
            self.send({"type": "dtmf", "call": message["call"], "digits": o.digits})

    def dialMessage(self, kind, message):
        """--dial mode: place the call once registered, hang up as told, exit when dropped."""
        o = self.options
        loop = asyncio.get_event_loop()
        if kind == "registered":
            self.send({"type": "call", "to": o.dial, "sdp": OFFER_SDP, "ref": "e2e-dial"})
        elif kind == "calling" and o.cancel_after is not None:
            loop.call_later(o.cancel_after, self.send,
                            {"type": "hangup", "call": message["call"]})
        elif kind == "state" and message.get("state") == "confirmed":
            if o.digits:
                self.send({"type": "dtmf", "call": message["call"], "digits": o.digits})
            if o.hangup_after is not None:
                loop.call_later(o.hangup_after, self.send,
                                {"type": "hangup", "call": message["call"]})
        elif (kind == "state" and message.get("state") == "dropped") or kind == "error":
            self.sendClose()

    def accept(self, call, offer):
        self.send({"type": "accept", "call": call, "sdp": ANSWER_SDP.format(port=40000)})
        if self.options.hangup_after is not None:
            asyncio.get_event_loop().call_later(
                self.options.hangup_after, self.send, {"type": "hangup", "call": call})

    def onClose(self, wasClean, code, reason):
        if not self.done.done():
            self.done.set_result(code)


def connect(protocol, options):
    """
    Make and install a new event loop, give C{protocol} (a client protocol
    class) C{options} and a C{done} future, and connect it to C{options.url}
    (C{ws://HOST:PORT/...}).

    @return: the loop.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    protocol.options = options
    protocol.done = loop.create_future()
    factory = WebSocketClientFactory(options.url)
    factory.protocol = protocol
    host, port = options.url.split("//", 1)[1].split("/", 1)[0].split(":")
    loop.run_until_complete(loop.create_connection(factory, host, int(port)))
    return loop


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--action", default="answer", choices=["answer", "reject", "ring", "ignore"])
    parser.add_argument("--reason", default="busy")
    parser.add_argument("--answer-after", type=float, default=0.0, help="seconds")
    parser.add_argument("--hangup-after", type=float, default=None, help="seconds")
    parser.add_argument("--digits", default=None)
    parser.add_argument("--dial", default=None, help="place one outbound call to this number")
    parser.add_argument("--cancel-after", type=float, default=None,
                        help="--dial: seconds after 'calling' to hang up before the answer")
    parser.add_argument("--calls", type=int, default=0, help="exit after this many calls ended")
    parser.add_argument("--lifetime", type=float, default=60.0, help="seconds")
    parser.add_argument("--token", default=None, help="access token (linkrtc token NAME)")
    parser.add_argument("--trace", action="store_true",
                        help="register with trace: receive the calls' SIP ladder")
    options = parser.parse_args()

    loop = connect(Client, options)
    try:
        loop.run_until_complete(asyncio.wait_for(Client.done, options.lifetime))
    except asyncio.TimeoutError:
        print(json.dumps({"type": "lifetime-expired"}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
