# -*- test-case-name: linkrtc.sip.test.test_reliable -*-
"""
Reliable provisional responses: PRACK (RFC 3262).

L{ReliableProvisionals} is the UAS side of one INVITE (RFC 3262 §3): each
1xx (but 100) it is given goes out with C{Require: 100rel} and an C{RSeq},
one at a time, and is retransmitted at T1, 2*T1, 4*T1... (UDP) until the
PRACK whose C{RAck} names it; without that PRACK within 64*T1 seconds the
INVITE is to be rejected with a 5xx. A 2xx to the INVITE waits for the PRACK
of the reliable provisional still unacknowledged (L{whenAcknowledged}): so
the answer of a reliable 183 with SDP is known to the caller before the 2xx.

L{PrackSender} is the UAC side (RFC 3262 §4): for each reliable provisional
(C{Require: 100rel} and an C{RSeq}) it sends one PRACK, in C{RSeq} order per
early dialog (To tag); repeats and responses out of order are not passed on.
"""

import random

from twisted.logger import Logger

from linkrtc.sip.dialog import Dialog

log = Logger()

#: The option tag of RFC 3262 (Supported / Require).
OPTION_TAG = "100rel"

#: The status the INVITE gets when a reliable provisional is never PRACKed
#: (RFC 3262 §3: "reject the original request with a 5xx").
NO_PRACK_STATUS = 504

#: The largest RSeq (RFC 3262 §7.1: 1 .. 2**31 - 1 for the first).
_MAX_RSEQ = 2 ** 31 - 1


def optionTags(message, name):
    """
    @param message: a L{linkrtc.sip.message.Message}.
    @param name: C{"Supported"} or C{"Require"}.
    @return: the lower-case option tags of every C{name} header (C{list}).
    """
    tags = []
    for value in message.headers.getAll(name):
        tags.extend(t.strip().lower() for t in value.split(",") if t.strip())
    return tags


def offersReliable(request):
    """@return: C{True} if C{request} has C{100rel} in Supported or Require."""
    return OPTION_TAG in optionTags(request, "Supported") + optionTags(request, "Require")


def isReliable(response):
    """@return: C{True} if C{response} is a reliable provisional (Require: 100rel)."""
    return 101 <= response.status <= 199 and OPTION_TAG in optionTags(response, "Require")


def parseRAck(value):
    """
    Read a C{RAck} header (RFC 3262 §7.2: C{response-num CSeq-num Method}).

    @param value: C{str}.
    @return: C{(rseq, cseq, method)}: C{int}, C{int}, upper-case C{str}.
    @raise ValueError: if it is not three such fields.
    """
    parts = (value or "").split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError("bad RAck %r" % (value,))
    return int(parts[0]), int(parts[1]), parts[2].upper()


class ReliableProvisionals:
    """
    The reliable provisional responses of one INVITE server leg (RFC 3262 §3).

    @ivar rseq: the RSeq of the last reliable provisional sent (C{int}).
    @ivar unacknowledged: the reliable provisional (L{Response}) waiting for
        its PRACK, or C{None}.
    """

    def __init__(self, clock, T1, cseq, send, onTimeout, reliableTransport, firstRSeq=None):
        """
        @param clock: an C{IReactorTime}.
        @param T1: RFC 3261 T1, seconds.
        @param cseq: the INVITE's CSeq number (C{int}), which a PRACK's RAck names.
        @param send: called with each L{Response} to transmit it (first
            time and retransmissions).
        @param onTimeout: called with no argument when a reliable
            provisional has had no PRACK for 64*T1 seconds.
        @param reliableTransport: C{True} on TCP/TLS: no retransmissions,
            the 64*T1 timeout only.
        @param firstRSeq: the first RSeq (default random, 1..2**31-1).
        """
        self._clock = clock
        self._T1 = T1
        self._cseq = cseq
        self._send = send
        self._onTimeout = onTimeout
        self._reliableTransport = reliableTransport
        self.rseq = (firstRSeq or random.randint(1, _MAX_RSEQ // 2)) - 1
        self.unacknowledged = None
        self._acknowledged = set()
        self._queue = []
        self._waiting = []
        self._timer = None
        self._deadline = None
        self._interval = T1

    def send(self, response):
        """
        Send C{response} (a 101-199 L{Response}) reliably: C{Require: 100rel}
        and the next C{RSeq}; queued while another one waits for its PRACK
        (RFC 3262 §3: one at a time).
        """
        response.headers.add("Require", OPTION_TAG)
        if self.unacknowledged is not None:
            self._queue.append(response)
            return
        self._transmit(response)

    def _transmit(self, response):
        self.rseq += 1
        response.headers.set("RSeq", str(self.rseq))
        self.unacknowledged = response
        self._interval = self._T1
        if not self._reliableTransport:
            self._timer = self._clock.callLater(self._interval, self._retransmit)
        self._deadline = self._clock.callLater(64 * self._T1, self._timedOut)
        self._send(response)

    def _retransmit(self):
        self._timer = None
        if self.unacknowledged is None:
            return
        self._interval *= 2
        self._timer = self._clock.callLater(self._interval, self._retransmit)
        self._send(self.unacknowledged)

    def _timedOut(self):
        self._deadline = None
        log.info("no PRACK for a reliable provisional (RSeq {rseq})", rseq=self.rseq)
        self.stop()
        self._onTimeout()

    def prackReceived(self, prack):
        """
        A PRACK for this INVITE (RFC 3262 §3).

        @param prack: the PRACK L{Request}.
        @return: the status to answer it with: 200 if its RAck names the
            provisional waiting (or one already acknowledged: a repeat),
            else 481. What the PRACK lets go (the next provisional, a held
            2xx) goes with L{advance}, once that answer is sent.
        """
        try:
            rseq, cseq, method = parseRAck(prack.headers.get("RAck"))
        except ValueError:
            return 481
        if cseq != self._cseq or method != "INVITE":
            return 481
        if self.unacknowledged is not None and rseq == self.rseq:
            self._cancelTimers()
            self.unacknowledged = None
            self._acknowledged.add(rseq)
            return 200
        return 200 if rseq in self._acknowledged else 481

    def advance(self):
        """
        After a PRACK's answer: send the next queued provisional, or, with
        none left, call what waits for L{whenAcknowledged}.
        """
        if self.unacknowledged is not None:
            return
        if self._queue:
            self._transmit(self._queue.pop(0))
            return
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()

    @property
    def pending(self):
        """C{True} while a reliable provisional waits for its PRACK (or its turn)."""
        return self.unacknowledged is not None or bool(self._queue)

    def whenAcknowledged(self, callback):
        """
        Call C{callback} (no argument) once no reliable provisional waits
        for its PRACK: now if none does.
        """
        if not self.pending:
            callback()
        else:
            self._waiting.append(callback)

    def _cancelTimers(self):
        for call in (self._timer, self._deadline):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._deadline = None

    def stop(self):
        """Stop retransmitting; forget what is queued or waiting (a final response went)."""
        self._cancelTimers()
        self._queue = []
        self._waiting = []


class PrackSender:
    """
    The UAC side of RFC 3262 (§4) for one INVITE client leg: a PRACK for
    each reliable provisional, once per RSeq, in order per early dialog.
    """

    def __init__(self, send):
        """
        @param send: C{send(prack, dialog)}: send the PRACK L{Request} in
            the early L{Dialog} (its next hop); failures are its own.
        """
        self._send = send
        self._early = {}  # To tag -> [last RSeq, early Dialog, INVITE CSeq]

    def provisionalReceived(self, invite, response, localContact):
        """
        A 1xx to C{invite}: PRACK it if it is reliable and next in order.

        @param invite: the INVITE L{Request} it answers.
        @param response: the 1xx L{Response}.
        @param localContact: our Contact (L{NameAddr}) for the early dialog.
        @return: C{True} if the response is new (pass it on), C{False} for
            a repeat or one out of order (RFC 3262 §4).
        """
        if not isReliable(response):
            return True
        tag = response.toAddr.tag
        rseqText = response.headers.get("RSeq") or ""
        if not tag or not rseqText.strip().isdigit():
            log.info("reliable {status} without To tag or RSeq: not PRACKed",
                     status=response.status)
            return True
        rseq = int(rseqText.strip())
        known = self._early.get(tag)
        if known is not None and known[2] != invite.cseq.number:
            known = None  # a new INVITE (after 401/407): a new sequence
        if known is not None:
            if rseq <= known[0]:
                return False
            if rseq != known[0] + 1:
                log.info("reliable {status} out of order (RSeq {rseq}) dropped",
                         status=response.status, rseq=rseq)
                return False
            known[0] = rseq
            dialog = known[1]
        else:
            dialog = Dialog.fromClientResponse(invite, response, localContact)
            self._early[tag] = [rseq, dialog, invite.cseq.number]
        dialog.refreshTarget(response)
        prack = dialog.createRequest(
            "PRACK", headers=[("RAck", "%d %d INVITE" % (rseq, invite.cseq.number))])
        try:
            self._send(prack, dialog)
        except Exception:
            log.failure("PRACK not sent")
        return True

    def lastCSeq(self, tag):
        """@return: the CSeq number of the last PRACK in the early dialog C{tag}, or 0."""
        known = self._early.get(tag)
        return known[1].localSeq if known is not None else 0
