"""
A bare Twisted UDP SIP responder: the ceiling for bench/cps.py.

It answers INVITE with 200 OK (To tag added) and BYE with 200 OK, ignores
ACK, keeps no state and parses nothing beyond the header names it copies.

    python bench/bare_responder.py PORT
"""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

COPIED = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:", b"v:", b"f:", b"t:", b"i:")


class Responder(DatagramProtocol):
    def datagramReceived(self, data, address):
        head = data.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        method = lines[0].split(b" ", 1)[0]
        if method not in (b"INVITE", b"BYE"):
            return
        out = [b"SIP/2.0 200 OK"]
        for line in lines[1:]:
            lower = line[:9].lower()
            if lower.startswith(COPIED):
                if lower.startswith((b"to:", b"t:")) and b"tag=" not in line:
                    line += b";tag=bare"
                out.append(line)
        out.append(b"Contact: <sip:bare@127.0.0.1:%d>" % self.transport.getHost().port)
        out.append(b"Content-Length: 0")
        self.transport.write(b"\r\n".join(out) + b"\r\n\r\n", address)


if __name__ == "__main__":
    reactor.listenUDP(int(sys.argv[1]), Responder(), interface="127.0.0.1")
    reactor.run()
