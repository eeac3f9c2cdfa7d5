# -*- test-case-name: linkrtc.api.test.test_verify -*-
"""
Checking a webhook request on the application's side (docs/webhooks.rst,
"Signature" and "Replays"): the signature, the timestamp window and the
C{event_id}, so that a captured request cannot be played again.

The signature (L{linkrtc.api.webhook.signBody}) covers the timestamp and the
raw body, and the body holds the C{event_id}: an attacker can neither move a
request in time nor change its C{event_id}. A replay inside the window is
therefore the same C{event_id} again, which L{SeenEvents} remembers for
longer than the window; one outside it has a stale timestamp.

Usage, with any web framework::

    seen = SeenEvents()

    def handle(headers, body):
        try:
            event = verifyWebhook(SECRET, headers, body, time.time(), seen=seen)
        except DuplicateEvent as e:
            return 200, answerGivenBefore(e.eventId)   # a retry or a replay
        except WebhookVerificationError:
            return 401, b""
        ...
"""

import hmac
import json
import re

from linkrtc.api.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signBody

__all__ = [
    "DEFAULT_WINDOW",
    "DuplicateEvent",
    "SeenEvents",
    "WebhookVerificationError",
    "verifyWebhook",
]

#: Seconds a request's timestamp may differ from the application's clock.
DEFAULT_WINDOW = 300.0

_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")


class WebhookVerificationError(ValueError):
    """
    A webhook request is not to be trusted; answer it 401 without acting.

    @ivar reason: one word: C{missing_timestamp}, C{bad_timestamp},
        C{stale_timestamp}, C{missing_signature}, C{bad_signature},
        C{bad_body}, C{missing_event_id}, C{duplicate}.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class DuplicateEvent(WebhookVerificationError):
    """
    A correctly signed request whose C{event_id} was seen before: LinkRTC
    sending the event again (its answer was lost or late) or a replay.
    Answer it as the first time (C{200} for a notification, the same
    decision for C{incoming}/C{outgoing}) without acting again.

    @ivar eventId: the C{event_id}, C{str}.
    @ivar event: the body, a C{dict}.
    """

    def __init__(self, eventId, event):
        super().__init__("duplicate")
        self.eventId = eventId
        self.event = event


class SeenEvents:
    """
    The C{event_id}s of the last C{keep} seconds.

    @param keep: seconds an C{event_id} is remembered; at least twice the
        timestamp window (a request may be up to C{window} seconds early or
        late), and at least LinkRTC's C{--webhook-give-up-seconds} plus a
        margin to recognise its retries (default 600).
    """

    def __init__(self, keep=600.0):
        self.keep = keep
        self._seen = {}

    def __len__(self):
        return len(self._seen)

    def add(self, eventId, now):
        """
        Remember C{eventId} at time C{now} (Unix seconds), forgetting ids
        older than C{keep}.

        @return: C{True} if it is new, C{False} if it was seen before.
        """
        for old, when in list(self._seen.items()):
            if now - when > self.keep:
                del self._seen[old]
            else:
                break  # insertion order is time order
        if eventId in self._seen:
            return False
        self._seen[eventId] = now
        return True


def _header(headers, name):
    """@return: the first value of header C{name} (any case) as C{str}, or C{None}."""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if key.lower() != wanted:
            continue
        if isinstance(value, (list, tuple)):
            if not value:
                return None
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return value
    return None


def verifyWebhook(secret, headers, body, now, window=DEFAULT_WINDOW, seen=None):
    """
    Check one webhook request as an application should, and return its event.

    @param secret: the C{--webhook-secret}, C{str} (UTF-8) or C{bytes}.
    @param headers: the request headers: a mapping of names (any case,
        C{str} or C{bytes}) to values (C{str}, C{bytes} or a list of them).
    @param body: the raw request body, C{bytes}, before any JSON parsing.
    @param now: the application's time, Unix seconds.
    @param window: seconds C{X-LinkRTC-Timestamp} may be from C{now}, either way.
    @param seen: a L{SeenEvents} to refuse a repeated C{event_id}, or
        C{None} to leave that check out (then a replay inside the window
        passes).
    @return: the event, a C{dict} (the parsed body).
    @raise DuplicateEvent: the C{event_id} is in C{seen}.
    @raise WebhookVerificationError: anything else wrong (the C{reason} says
        what); nothing is added to C{seen} then.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if timestamp is None:
        raise WebhookVerificationError("missing_timestamp")
    timestamp = timestamp.strip()
    if not _TIMESTAMP.match(timestamp):
        raise WebhookVerificationError("bad_timestamp")
    signature = _header(headers, SIGNATURE_HEADER)
    if signature is None:
        raise WebhookVerificationError("missing_signature")
    if not hmac.compare_digest(signBody(secret, timestamp, bytes(body)).encode("ascii"),
                               signature.strip().encode("utf-8", "replace")):
        raise WebhookVerificationError("bad_signature")
    if abs(now - int(timestamp)) > window:
        raise WebhookVerificationError("stale_timestamp")
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookVerificationError("bad_body") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("bad_body")
    eventId = event.get("event_id")
    if not isinstance(eventId, str) or not eventId:
        raise WebhookVerificationError("missing_event_id")
    if seen is not None and not seen.add(eventId, now):
        raise DuplicateEvent(eventId, event)
    return event
