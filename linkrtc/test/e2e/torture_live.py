"""
Send the RFC 4475 and RFC 5118 torture messages to a running LinkRTC over
UDP and print, as JSON, the first response status each one got (or null).

Run inside a network namespace that has only loopback (the caller does
C{unshare --net}), LinkRTC on a fixed port. Replies go to the packet's
source address and port (RFC 3581 behaviour; LinkRTC never follows the
sent-by, C{received} or C{maddr} of a Via, docs/security.rst "Response
addressing"), so this script listens on its sending socket only.

    unshare --net python torture_live.py MESSAGES_DIR [--port 5080]
"""

import argparse
import json
import os
import re
import select
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.harness import LinkRTCProcess  # noqa: E402


def _header(data, names):
    data = re.sub(rb"\r?\n[ \t]+", b" ", data.split(b"\r\n\r\n", 1)[0])
    m = re.search(rb"^(?:" + names + rb")[ \t]*:[ \t]*([^\r\n]*)", data, re.M | re.I)
    return m.group(1).strip() if m else None


def identity(data):
    """
    @return: what ties a response to its request: Call-ID, the top Via's
        sent-by and branch, and the method (several torture messages share the first
        two), or C{None}.
    """
    callId = _header(data, rb"Call-ID|i")
    if callId is None:
        return None
    via = _header(data, rb"Via|v") or b""
    branch = re.search(rb"branch\s*=\s*([^;,\s]+)", via, re.I)
    method = (_header(data, rb"CSeq") or b"").split()[-1:]
    sentBy = via.split(b";")[0].split(b",")[0].replace(b" ", b"")
    return (callId, sentBy, branch.group(1) if branch else None, method)


def drain(sockets):
    """Throw away replies still queued (retransmissions for earlier messages)."""
    while True:
        ready, _, _ = select.select(sockets, [], [], 0)
        if not ready:
            return
        for s in ready:
            s.recvfrom(65536)


def transactionKey(data):
    """
    @return: what RFC 3261 §17.2.3 matches a request's transaction by
        (top Via branch and sent-by, method), roughly, from the raw bytes.
    """
    via = re.search(rb"^(?:Via|v)[ \t]*:[ \t]*([^\r\n]*)", data, re.M | re.I)
    method = data.split(b" ", 1)[0]
    return (via.group(1).split(b",")[0].replace(b" ", b"") if via else None,
            b"INVITE" if method == b"ACK" else method)


def groups(paths):
    """
    Split messages into groups whose transaction keys differ: many RFC 4475
    messages share a branch and sent-by, and a second one sent to the same
    LinkRTC within Timer J is, by the RFC, a retransmission of the first.
    """
    result = []
    for path in paths:
        with open(path, "rb") as f:
            key = transactionKey(f.read())
        for group in result:
            if key not in group["keys"]:
                group["keys"].add(key)
                group["paths"].append(path)
                break
        else:
            result.append({"keys": {key}, "paths": [path]})
    return [g["paths"] for g in result]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("messages", nargs="+", help="directories of *.sip files")
    parser.add_argument("--port", type=int, default=5080)
    parser.add_argument("--wait", type=float, default=0.6, help="seconds to wait for a reply")
    args = parser.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    paths = [os.path.join(d, n) for d in args.messages for n in sorted(os.listdir(d))
             if n.endswith(".sip")]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    listeners = [sender]

    results = {}
    alive = True
    from linkrtc.test.e2e.harness import waitForSIP

    for group in groups(paths):
        linkrtc = LinkRTCProcess(sipPort=args.port).start()
        try:
            for path in group:
                with open(path, "rb") as f:
                    data = f.read()
                wanted = identity(data)
                drain(listeners)
                sender.sendto(data, ("127.0.0.1", args.port))
                status = None
                deadline = time.monotonic() + args.wait
                while time.monotonic() < deadline:
                    ready, _, _ = select.select(
                        listeners, [], [], max(0.0, deadline - time.monotonic()))
                    for s in ready:
                        reply, _ = s.recvfrom(65536)
                        if not reply.startswith(b"SIP/2.0 "):
                            continue
                        if wanted is not None and identity(reply) not in (wanted, None):
                            continue
                        if status is None:
                            status = int(reply[8:11])
                    if status is not None:
                        break
                results[os.path.basename(path)] = status
            alive = alive and linkrtc.process.poll() is None
            waitForSIP(args.port, timeout=5)
        finally:
            linkrtc.stop()
    print(json.dumps({"results": results, "alive": alive}))


if __name__ == "__main__":
    main()
