"""
The benches' auto-answering WebSocket client, made as cheap as it can be
so that the CPU it takes from a shared machine is small next to the
LinkRTC nodes it loads (bench/cluster.py).

One process holds one WebSocket per (URL, name) pair, on blocking sockets
read through one C{selectors} loop, with RFC 6455 framing written by hand
(no WebSocket library, no event-loop framework, no JSON decoding but of
the C{incoming} messages). Each C{incoming} call is answered with
C{ringing} and C{accept} (a passthrough SDP answer) in one write; every
other message is skipped unread. The client's frames use the all-zero
masking key: a valid key (RFC 6455 §5.3) that leaves the payload as it is,
so no byte is XORed; fine on 127.0.0.1, not for a client on the Internet.
After each round of reads it sleeps 2 ms (C{--coalesce}), so that under
load one wake-up reads the messages of many calls: fewer system calls per
call, each answer later by at most that much.

It prints C{registered NAME} per connection once LinkRTC answered its
C{register}, and exits after C{--lifetime} seconds or when a connection
closes.

    python bench/answerer.py ws://127.0.0.1:8081/ws bench-a ws://127.0.0.1:8082/ws bench-b
"""

import argparse
import base64
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time

#: The SDP answer to every call (passthrough media: nothing is sent to it).
ANSWER_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def frame(payload, opcode=TEXT):
    """
    @param payload: C{bytes}.
    @return: one final client frame (C{bytes}) carrying C{payload}, masked
        with the all-zero key.
    """
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + b"\0\0\0\0" + payload


def frames(buffer):
    """
    Split complete server frames off C{buffer}.

    @param buffer: C{bytes} read so far.
    @return: C{([(opcode, payload)], rest)}; C{rest} is an incomplete frame.
    """
    out, pos, size = [], 0, len(buffer)
    while size - pos >= 2:
        first, second = buffer[pos], buffer[pos + 1]
        length, header = second & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, header = struct.unpack_from("!H", buffer, pos + 2)[0], 4
        elif length == 127:
            if size - pos < 10:
                break
            length, header = struct.unpack_from("!Q", buffer, pos + 2)[0], 10
        masked = second & 0x80
        if masked:
            header += 4
        if size - pos < header + length:
            break
        payload = buffer[pos + header:pos + header + length]
        if masked:
            key = buffer[pos + header - 4:pos + header]
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        out.append((first & 0x0F, payload))
        pos += header + length
    return out, buffer[pos:]


def answerOf(call):
    """@return: the C{ringing} and C{accept} frames for call id C{call} (C{str}), one C{bytes}."""
    quoted = json.dumps(call)
    return (frame(b'{"type":"ringing","call":' + quoted.encode() + b"}")
            + frame(b'{"type":"accept","call":' + quoted.encode() + b',"sdp":'
                    + json.dumps(ANSWER_SDP).encode() + b"}"))


def connect(url, name, timeout=10.0):
    """
    Open the WebSocket at C{url} (C{ws://HOST:PORT/PATH}) and send
    C{register} as C{name}.

    @return: C{(socket, bytes already read past the handshake)}.
    @raise OSError: the connection or the upgrade failed.
    """
    hostPort, _, path = url.split("//", 1)[1].partition("/")
    host, port = hostPort.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: {hostPort}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError(f"{url}: closed during the upgrade")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(f"{url}: upgrade refused: {head[:200]!r}")
    sock.sendall(frame(json.dumps({"type": "register", "client": name}).encode()))
    sock.settimeout(None)
    return sock, rest


def serve(pairs, lifetime, coalesce=0.002):
    """
    Answer every call on the connections of C{pairs} (C{[(url, name)]})
    for C{lifetime} seconds; print C{registered NAME} as each registers.

    @param coalesce: seconds to sleep after each round of reads, so that
        under load one wake-up reads many messages (fewer system calls per
        call; each answer waits at most that long).

    @return: the number of calls answered.
    """
    selector = selectors.DefaultSelector()
    buffers, names = {}, {}
    for url, name in pairs:
        sock, rest = connect(url, name)
        buffers[sock], names[sock] = rest, name
        selector.register(sock, selectors.EVENT_READ)
    answered = 0
    deadline = time.monotonic() + lifetime
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return answered
        for key, _ in selector.select(left):
            sock = key.fileobj
            chunk = sock.recv(262144)
            if not chunk:
                return answered
            messages, buffers[sock] = frames(buffers[sock] + chunk)
            out = []
            for opcode, payload in messages:
                if opcode == TEXT:
                    # Only the type is looked at, in the first bytes; the
                    # rest of a message is parsed for an incoming call only.
                    head = payload[:40]
                    if b'"incoming"' in head:
                        out.append(answerOf(json.loads(payload)["call"]))
                        answered += 1
                    elif b'"registered"' in head:
                        print(f"registered {names[sock]}", flush=True)
                elif opcode == PING:
                    out.append(frame(payload, PONG))
                elif opcode == CLOSE:
                    return answered
            if out:
                sock.sendall(b"".join(out))
        if coalesce:
            time.sleep(coalesce)


class Answerer:
    """
    This client in a subprocess, for the benches.

    @ivar process: its L{subprocess.Popen}.
    """

    def __init__(self, pairs, lifetime=3600, coalesce=0.002):
        """
        @param pairs: C{[(url, name)]}, one WebSocket each.
        @param lifetime: seconds before it exits by itself.
        @param coalesce: see L{serve}.
        """
        argv = [sys.executable, os.path.abspath(__file__), "--lifetime", str(lifetime),
                "--coalesce", str(coalesce)]
        for url, name in pairs:
            argv += [url, name]
        self.count = len(pairs)
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)

    def waitRegistered(self):
        """Block until every connection registered; @raise AssertionError: it exited first."""
        registered = 0
        while registered < self.count:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"the answerer exited ({self.process.wait()})")
            if line.startswith("registered "):
                registered += 1

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+", help="URL NAME [URL NAME ...]")
    parser.add_argument("--lifetime", type=float, default=600.0, help="seconds")
    parser.add_argument("--coalesce", type=float, default=0.002,
                        help="seconds to sleep after each round of reads")
    options = parser.parse_args()
    if len(options.pairs) % 2:
        parser.error("give URL NAME pairs")
    pairs = list(zip(options.pairs[::2], options.pairs[1::2]))
    answered = serve(pairs, options.lifetime, options.coalesce)
    print(f"answered {answered}", flush=True)


if __name__ == "__main__":
    main()
