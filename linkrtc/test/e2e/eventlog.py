"""
A twistd log observer for end-to-end tests that must see every field of
every log event, not only the formatted text: C{twistd
--logger=linkrtc.test.e2e.eventlog.observer} writes, for each event, its
classic text line and then C{repr} of the whole event (every key, debug
events included) to the file named by C{LINKRTC_E2E_EVENT_LOG}.
"""

import os

from twisted.logger import formatEventAsClassicLogText


def observer():
    """@return: the observer (a callable taking one event C{dict})."""
    stream = open(os.environ["LINKRTC_E2E_EVENT_LOG"], "a", encoding="utf-8",
                  errors="backslashreplace")

    def observe(event):
        text = formatEventAsClassicLogText(event) or ""
        stream.write(text)
        stream.write("EVENT " + repr(event) + "\n")
        stream.flush()

    return observe
