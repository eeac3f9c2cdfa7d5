# -*- test-case-name: linkrtc.call.test.test_cdr -*-
"""
Call detail records: one JSON object per call, logged through
twisted.logger and, when a path is configured (C{--cdr FILE}), appended to
that file as one line.
"""

import json

from twisted.logger import Logger

log = Logger()


def cdrLine(record):
    """
    @param record: the CDR C{dict}.
    @return: its JSON text on one line (C{str}, no newline), keys sorted.
    """
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


class CDRWriter:
    """
    Writes CDRs.

    @ivar path: the file CDRs are appended to (JSON lines, UTF-8), or
        C{None} to only log them.
    """

    def __init__(self, path=None):
        self.path = path

    def write(self, record):
        """
        Log C{record} as a structured event (C{log_namespace}
        C{linkrtc.call.cdr}, key C{cdr} the C{dict}, C{cdr_json} the line)
        and append it to L{path}. Never raises: a file error is logged.
        """
        line = cdrLine(record)
        log.info("CDR {cdr_json}", cdr=record, cdr_json=line, call_id=record.get("call"))
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            log.failure("CDR not appended to {path}", path=self.path)
