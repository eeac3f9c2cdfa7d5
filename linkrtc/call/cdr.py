# -*- test-case-name: linkrtc.call.test.test_cdr -*-
"""
Call detail records: JSON objects logged through twisted.logger and, when
a path is configured (C{--cdr FILE}), appended to that file, one per line.

Two records per answered call (docs/webhooks.rst, "CDR file"): a C{start}
record (C{"record": "start"}) written when the call is answered, so that a
process killed during the call leaves evidence of it, and the C{end}
record (C{"record": "end"}) written when it is released. A call that is
never answered has only its C{end} record.

In the log (fast path, docs/performance.rst "Fast paths"): the C{end}
record is the one line a call writes at the default level (C{info}); the
C{start} record is logged at C{debug}, and is not even encoded when
neither the log level nor a file wants it. Each record is encoded once,
by a JSON encoder built once (L{cdrLine}), for the log and the file.

The file is written off the reactor thread: L{CDRWriter.write} queues the
line and a job in a worker thread (the injected C{IReactorThreads}, the
reactor's thread pool in production) appends every queued line, in order,
and C{fsync}s the file before it returns (a group commit: the lines queued
while one job writes go in the next). The file is created with mode 0600
(the records name callers and callees).
"""

import json
import os
import threading

from twisted.logger import Logger

from linkrtc.logging import debugEnabled

log = Logger()

#: The C{record} value of the line written when a call is answered.
RECORD_START = "start"

#: The C{record} value of the line written when a call ends.
RECORD_END = "end"

#: The mode of a CDR file LinkRTC creates.
CDR_FILE_MODE = 0o600


#: The CDR encoder, built once: C{json.dumps} with arguments builds a new
#: C{JSONEncoder} on every call (fast path).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def cdrLine(record):
    """
    @param record: the CDR C{dict}.
    @return: its JSON text on one line (C{str}, no newline), keys sorted;
        values JSON cannot encode are written as their C{str}.
    """
    return _ENCODER.encode(record)


def appendLines(path, lines, fsync=os.fsync):
    """
    Append C{lines} to the file at C{path} and C{fsync} it; create the file
    with mode 0600 (and C{fsync} its directory) if it does not exist.

    @param lines: C{str}s without newlines.
    @param fsync: C{os.fsync} (a test may count the calls).
    @raise OSError: the file cannot be opened, written or synced.
    """
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    created = False
    try:
        fd = os.open(path, flags | os.O_EXCL, CDR_FILE_MODE)
        created = True
    except FileExistsError:
        fd = os.open(path, flags, CDR_FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        fsync(fd)
    finally:
        os.close(fd)
    if created:
        directory = os.path.dirname(os.path.abspath(path))
        try:
            dirfd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            fsync(dirfd)
        except OSError:
            pass
        finally:
            os.close(dirfd)


class CDRWriter:
    """
    Writes CDRs.

    @ivar path: the file CDRs are appended to (JSON lines, UTF-8), or
        C{None} to only log them.
    """

    def __init__(self, path=None, threads=None, fsync=os.fsync):
        """
        @param path: see L{path}.
        @param threads: an C{IReactorThreads} (the reactor) whose
            C{callInThread} runs the file writes, or C{None} to write in
            the caller's thread (tests on a C{task.Clock}).
        @param fsync: C{os.fsync}; tests give a counting one.
        """
        self.path = path
        self._threads = threads
        self._fsync = fsync
        self._lock = threading.Lock()
        self._writeLock = threading.Lock()
        self._pending = []
        self._scheduled = False
        self._closed = False

    def write(self, record):
        """
        Log C{record} as a structured event (C{log_namespace}
        C{linkrtc.call.cdr}, key C{cdr} the C{dict}, C{cdr_json} the line;
        level C{info} for an C{end} record, C{debug} for a C{start} one)
        and queue it for L{path}. Never raises: a file error is logged.
        """
        if record.get("record") == RECORD_START:
            # the call's one default-level line is its end record
            if debugEnabled():
                line = cdrLine(record)
                log.debug("CDR {cdr_json}", cdr=record, cdr_json=line,
                          call_id=record.get("call"))
            elif self.path is None:
                return
            else:
                line = cdrLine(record)
        else:
            line = cdrLine(record)
            log.info("CDR {cdr_json}", cdr=record, cdr_json=line, call_id=record.get("call"))
        if self.path is None:
            return
        with self._lock:
            self._pending.append(line)
            if self._scheduled:
                return
            self._scheduled = True
        if self._threads is None or self._closed:
            self._flush()
            return
        try:
            self._threads.callInThread(self._flush)
        except Exception:
            log.failure("CDR writer thread unavailable; writing in this thread")
            self._flush()

    def _flush(self):
        """
        Append every queued line, in order (runs in the worker thread); one
        flush at a time, so the lines keep the order of L{write}.
        """
        with self._writeLock:
            while True:
                with self._lock:
                    lines, self._pending = self._pending, []
                    if not lines:
                        self._scheduled = False
                        return
                try:
                    appendLines(self.path, lines, self._fsync)
                except Exception:
                    log.failure("{count} CDR(s) not appended to {path}", count=len(lines),
                                path=self.path)

    def close(self):
        """
        Write what is still queued in the caller's thread, and write every
        later record there too (for the end of the reactor: its thread pool
        is gone, and drops jobs).
        """
        self._closed = True
        with self._lock:
            if not self._pending:
                return
            self._scheduled = True
        self._flush()
