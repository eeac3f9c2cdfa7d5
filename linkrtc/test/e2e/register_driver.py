"""
Run one L{linkrtc.sip.registration.Registration} on the asyncio reactor
against a registrar (SIPp playing scenarios/uas_registrar.xml) and print,
as one JSON line on stdout, what happened:

    {"states": [...], "registers": [{"cseq": N, "expires": "...",
     "authorization": bool}, ...], "bound": N, "status": {...},
     "timeout": bool}

It stops (unregisters) once the binding was granted C{--bound} times (the
first registration and its refreshes), or C{--grace} seconds after the
state became C{failed}; it gives up after C{--timeout} seconds.

    python register_driver.py sip:127.0.0.1:5099 --user linkrtc --password s3cret
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("registrar", help="the registrar's SIP URI")
    parser.add_argument("--aor", default=None, help="address-of-record (default user@registrar)")
    parser.add_argument("--user", default="linkrtc")
    parser.add_argument("--password", default="s3cret")
    parser.add_argument("--expires", type=int, default=60)
    parser.add_argument("--bound", type=int, default=2,
                        help="stop after this many granted bindings")
    parser.add_argument("--grace", type=float, default=2.0,
                        help="seconds to watch for more REGISTERs after a failure")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from linkrtc.sip.auth import DigestCredentials
    from linkrtc.sip.registration import Registration
    from linkrtc.sip.transaction import TransactionLayer
    from linkrtc.sip.transport import SIPTransportLayer
    from linkrtc.sip.uri import parseURI

    registrar = parseURI(args.registrar)
    aor = args.aor or "sip:%s@%s" % (args.user, registrar.host)
    result = {"states": [], "registers": [], "bound": 0, "timeout": False}
    done = []

    def observe(event):
        if event.get("log_namespace") != "linkrtc.sip.registration":
            return
        if "newState" in event:
            result["states"].append(event["newState"])
            if event["newState"] == "failed" and not done:
                reactor.callLater(args.grace, finish)
        if "granted" in event:
            result["bound"] += 1
            if result["bound"] >= args.bound and not done:
                reactor.callLater(0, finish)

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr), observe],
                                     redirectStandardIO=False)

    class TU:
        """Answers nothing but what it must: this UA only registers."""

        def requestReceived(self, request, tx):
            if tx is not None:
                tx.respond(request.createResponse(405))

        def responseReceived(self, response):
            pass

    transport = SIPTransportLayer(reactor)
    layer = TransactionLayer(transport, reactor, TU())
    transport.receiver = layer
    send = layer.sendRequest

    def recordingSend(request, destination, listener):
        if request.method == "REGISTER":
            result["registers"].append({
                "cseq": request.cseq.number,
                "expires": request.headers.get("Expires"),
                "authorization": "Authorization" in request.headers,
            })
        return send(request, destination, listener)

    layer.sendRequest = recordingSend
    registration = Registration(
        layer, transport, reactor, registrar, aor,
        DigestCredentials(args.user, args.password), expires=args.expires,
        name="e2e", keepAliveInterval=None,
    )

    def finish(timedOut=False):
        if done:
            return
        done.append(True)
        result["timeout"] = timedOut
        d = registration.stop()

        def report(_):
            result["status"] = registration.status()
            print(json.dumps(result), flush=True)
            reactor.stop()

        d.addBoth(report)

    def started(port):
        registration.start()

    transport.listen("udp:0:interface=127.0.0.1").addCallbacks(
        started, lambda f: (print(json.dumps({"error": str(f.value)})), reactor.stop()))
    reactor.callLater(args.timeout, finish, True)
    reactor.run()


if __name__ == "__main__":
    main()
