# -*- test-case-name: linkrtc.sip.test.test_message -*-
"""
SIP header fields (RFC 3261 §7.3): canonical names, compact forms, list
headers and L{Headers}, the ordered multimap a message keeps its header
lines in. Re-exported by L{linkrtc.sip.message}.
"""

from linkrtc.sip.uri import splitCommas

__all__ = ["COMPACT", "Headers", "LIST_HEADERS", "canonicalName"]

#: The header keys some parsed view of a message is made from
#: (L{linkrtc.sip.message.Message}'s cache): L{Headers} counts changes of these only.
_VIEWED_KEYS = frozenset([
    "via", "call-id", "cseq", "from", "to", "contact", "route", "record-route", "max-forwards",
])

_CANONICAL = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Authentication-Info", "Authorization", "Call-ID",
    "Call-Info", "Contact", "Content-Disposition", "Content-Encoding", "Content-Language",
    "Content-Length", "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Join", "Max-Forwards",
    "MIME-Version", "Min-Expires", "Min-SE", "Organization", "P-Asserted-Identity",
    "P-Preferred-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require",
    "Resource-Priority", "Retry-After", "Route", "RSeq", "Security-Client", "Security-Server",
    "Security-Verify", "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To", "Unsupported",
    "User-Agent", "Via", "Warning", "WWW-Authenticate",
]

#: Compact forms (RFC 3261 §7.3.3 and later RFCs), lower-case.
COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires",
    "y": "Identity",
}

# lower-case spelling -> canonical name
_BY_LOWER = {name.lower(): name for name in _CANONICAL}
_BY_LOWER["from"] = "From"
_BY_LOWER.update(COMPACT)
# exact spellings seen on the wire -> (key, canonical name); filled lazily.
_EXACT = {}

#: Headers whose values are comma-separated lists (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    x.lower() for x in [
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Content-Encoding", "Content-Language", "Allow-Events", "Path", "Service-Route",
        "Alert-Info", "Call-Info", "Error-Info", "In-Reply-To", "Warning", "Reason",
        "P-Asserted-Identity", "P-Preferred-Identity", "Privacy", "Security-Client",
        "Security-Server", "Security-Verify", "History-Info", "Accept-Contact",
        "Reject-Contact", "Request-Disposition", "Accept-Resource-Priority",
        "Resource-Priority",
    ]
)


def canonicalName(name):
    """
    The canonical spelling of a header name: compact forms expanded, known
    names in their RFC spelling, unknown names as given (stripped).

    @return: C{(key, name)}: C{key} is the lower-case canonical name used
        for matching.
    """
    try:
        return _EXACT[name]
    except KeyError:
        pass
    stripped = name.strip(" \t")
    lower = stripped.lower()
    canon = _BY_LOWER.get(lower, stripped)
    result = (canon.lower(), canon)
    if len(_EXACT) < 4096:
        _EXACT[name] = result
    return result


def _entry(key, name, value):
    value = str(value)
    return (key, name, value, name + ": " + value)


class Headers:
    """
    An ordered, case-insensitive multimap of header fields (RFC 3261 §7.3).

    Names are canonical (C{'v'} and C{'VIA'} both become C{'Via'}); values
    are C{str} as written. One entry is one header line: C{items()} gives
    the lines in wire order, C{getAll()} splits comma lists.
    """

    # _gen counts changes; _keyGens maps a key to the _gen of its last change,
    # so that a message drops only the parsed views of the headers that changed.
    # (Only headers with parsed views, _VIEWED_KEYS, are counted.)
    __slots__ = ("_items", "_gen", "_keyGens")

    def __init__(self, items=()):
        """
        @param items: iterable of C{(name, value)}, or a mapping.
        """
        self._items = []
        self._gen = 0
        self._keyGens = {}
        if hasattr(items, "items"):
            items = items.items()
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _fromParsed(cls, entries):
        """Wrap a list of C{(key, name, value, line)} made by the parser."""
        self = cls.__new__(cls)
        self._items = entries
        self._gen = 0
        self._keyGens = {}
        return self

    def _changed(self, key):
        if key not in _VIEWED_KEYS:
            return  # no parsed view (Message._cache) is made from it
        gen = self._gen + 1
        self._gen = gen
        self._keyGens[key] = gen

    def get(self, name, default=None):
        """The first value of C{name}, or C{default}."""
        key = canonicalName(name)[0]
        for k, _, v, _ in self._items:
            if k == key:
                return v
        return default

    def getAll(self, name):
        """
        Every value of C{name} in order; for list headers (Via, Contact,
        Route, Allow, ...) a line holding several comma-separated values
        gives each of them.

        @rtype: C{list} of C{str}
        """
        key = canonicalName(name)[0]
        if key in LIST_HEADERS:
            out = []
            for k, _, v, _ in self._items:
                if k == key:
                    if v.strip() == "*":
                        out.append("*")
                    else:
                        out.extend(x for x in splitCommas(v) if x)
            return out
        return [v for k, _, v, _ in self._items if k == key]

    def getLines(self, name):
        """Every header line of C{name}, unsplit. @rtype: C{list} of C{str}"""
        key = canonicalName(name)[0]
        return [v for k, _, v, _ in self._items if k == key]

    def count(self, name):
        """How many lines of C{name} there are."""
        key = canonicalName(name)[0]
        return sum(1 for k, _, _, _ in self._items if k == key)

    def set(self, name, value):
        """
        Replace every C{name} line by one (at the place of the first), or
        by several if C{value} is a list.
        """
        key, canon = canonicalName(name)
        items = self._items
        if isinstance(value, (list, tuple)):
            entries = [_entry(key, canon, v) for v in value]
        else:
            entries = [_entry(key, canon, value)]
        # Fast path: one pass finds the first line of the name and whether
        # there is another (most sets replace one line or add a new one).
        first = -1
        for i, item in enumerate(items):
            if item[0] == key:
                if first >= 0:
                    rest = [item for item in items[first:] if item[0] != key]
                    items[first:] = entries + rest
                    break
                first = i
        else:
            if first < 0:
                items.extend(entries)
            elif len(entries) == 1:
                items[first] = entries[0]
            else:
                items[first : first + 1] = entries
        self._changed(key)

    def add(self, name, value):
        """Append a C{name} line."""
        key, canon = canonicalName(name)
        self._items.append(_entry(key, canon, value))
        self._changed(key)

    def addFirst(self, name, value):
        """Insert a C{name} line before all others (e.g. a new top Via)."""
        key, canon = canonicalName(name)
        self._items.insert(0, _entry(key, canon, value))
        self._changed(key)

    def remove(self, name):
        """Remove every C{name} line (no error if there is none)."""
        key = canonicalName(name)[0]
        self._items = [item for item in self._items if item[0] != key]
        self._changed(key)

    def __contains__(self, name):
        key = canonicalName(name)[0]
        for item in self._items:
            if item[0] == key:
                return True
        return False

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self.items())

    def items(self):
        """C{list} of C{(name, value)} in wire order."""
        return [(n, v) for _, n, v, _ in self._items]

    def copy(self):
        new = Headers.__new__(Headers)
        new._items = list(self._items)
        new._gen = 0
        new._keyGens = {}
        return new

    def __eq__(self, other):
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v, _ in self._items] == [(k, v) for k, _, v, _ in other._items]

    def __repr__(self):
        return "Headers(%r)" % (self.items(),)
