# -*- test-case-name: linkrtc.app.test -*-
"""
Fakes for testing call-control applications without media: an
L{ICallAudio} and an L{IConference} that record what they are asked and
finish when the test says, and media sessions that answer the SIP offer
themselves (as the bridge does for an application).

    h = CallHarness(mediaFactory=FakeAppMediaFactory(), application=...)
    audio = h.mediaFactory.sessions[call.id].fakeAudio
    audio.finish(finish_key="1")          # the running action ends
"""

from twisted.internet import defer
from zope.interface import implementer

from linkrtc.error import MediaError
from linkrtc.interfaces import IApplicationMediaSession, ICallAudio, IConference
from linkrtc.testing import FakeMediaFactory, FakeMediaSession, FakeReofferMediaSession

#: The SDP a fake application media session answers with (C{bytes}).
APP_ANSWER = (
    b"v=0\r\no=- 3 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


@implementer(ICallAudio)
class FakeCallAudio:
    """
    An L{ICallAudio}: one action at a time, each kept until L{finish}.

    @ivar calls: C{(method, args dict)} in order.
    @ivar running: C{(method, Deferred)} of the running action, or C{None}.
    @ivar closed: C{True} after C{close}.
    """

    rate = 8000

    def __init__(self, clock):
        self.clock = clock
        self.calls = []
        self.running = None
        self.closed = False
        self.listener = None
        self.connectedTo = None

    def _start(self, method, **args):
        if self.running is not None:
            raise MediaError(f"{self.running[0]} is running")
        self.calls.append((method, args))
        d = defer.Deferred()
        self.running = (method, d, self.clock.seconds())
        return d

    def play(self, content, finishKeys="", repeat=1):
        return self._start("play", content=content, finishKeys=finishKeys, repeat=repeat)

    def record(self, path, maxSeconds=None, beep=False, finishKeys="", fmt="wav"):
        return self._start("record", path=path, maxSeconds=maxSeconds, beep=beep,
                           finishKeys=finishKeys, fmt=fmt)

    def sendDigits(self, keys):
        return self._start("sendDigits", keys=keys)

    def receiveDigits(self, validKeys="0123456789*#", maxKeys=1, finishKeys="#",
                      firstKeyTimeout=45, continuesKeysTimeout=30, playContent=None,
                      playRepeat=0, ifBreakOnKey=True):
        return self._start("receiveDigits", validKeys=validKeys, maxKeys=maxKeys,
                           finishKeys=finishKeys, firstKeyTimeout=firstKeyTimeout,
                           continuesKeysTimeout=continuesKeysTimeout, playContent=playContent,
                           playRepeat=playRepeat, ifBreakOnKey=ifBreakOnKey)

    def connect(self, other, maxSeconds=None, recordPath=None, localVolume=None,
                remoteVolume=None, connectMode=1, schedulePlayTime=None,
                schedulePlayFile=None, schedulePlayLoop=0):
        d = self._start("connect", other=other, maxSeconds=maxSeconds, recordPath=recordPath,
                        connectMode=connectMode, schedulePlayTime=schedulePlayTime,
                        schedulePlayFile=schedulePlayFile, schedulePlayLoop=schedulePlayLoop)
        self.connectedTo = other
        other.connectedTo = self
        return d

    def finish(self, error=None, **fields):
        """The running action ends with C{error} and C{fields} (C{keys}, C{finish_key}...)."""
        method, d, begin = self.running
        self.running = None
        if self.connectedTo is not None:
            self.connectedTo.connectedTo = None
            self.connectedTo = None
        result = {"error": error, "begin_time": begin, "end_time": self.clock.seconds()}
        if method in ("play", "record"):
            result.setdefault("finish_key", None)
        if method == "receiveDigits":
            result["keys"] = ""
        result.update(fields)
        d.callback(result)

    def stop(self):
        self.calls.append(("stop", {}))
        if self.running is not None:
            self.finish()
        elif self.connectedTo is not None and self.connectedTo.running is not None:
            self.connectedTo.finish()

    def digitsListener(self, callback):
        self.listener = callback

    def close(self):
        self.closed = True
        self.stop()


@implementer(IConference)
class FakeConference:
    """
    An L{IConference} recording its parties; C{exit} ends a party's C{enter}.

    @ivar entered: C{(audio, arguments dict)} of each C{enter}, in order.
    """

    def __init__(self, clock):
        self.clock = clock
        self.members = {}
        self.entered = []

    def enter(self, audio, maxSeconds=None, volume=None, playFile=None, voiceMode=1):
        d = defer.Deferred()
        self.members[id(audio)] = (d, self.clock.seconds())
        self.entered.append((audio, {"maxSeconds": maxSeconds, "volume": volume,
                                     "playFile": playFile, "voiceMode": voiceMode}))
        return d

    def exit(self, audio):
        d, begin = self.members.pop(id(audio), (None, None))
        if d is not None:
            d.callback({"error": None, "begin_time": begin, "end_time": self.clock.seconds()})

    def parties(self):
        return len(self.members)


class _AppMixin:
    def answerLocally(self, sipOffer, codecs=("PCMU", "PCMA")):
        self.calls.append(("answerLocally", sipOffer))
        return self._result("answerLocally", APP_ANSWER)

    def offerLocally(self, codecs=None):
        self.calls.append(("offerLocally", codecs))
        return self._result("offerLocally", APP_ANSWER)

    def offerAnswered(self, sipAnswer):
        self.calls.append(("offerAnswered", sipAnswer))
        return self._result("offerAnswered", None)

    def audio(self):
        if self.fakeAudio is None:
            self.fakeAudio = FakeCallAudio(self.clock)
        return self.fakeAudio

    def close(self):
        if self.fakeAudio is not None and not self.fakeAudio.closed:
            self.fakeAudio.close()
        return super().close()


@implementer(IApplicationMediaSession)
class FakeAppMediaSession(_AppMixin, FakeMediaSession):
    """A L{FakeMediaSession} that can answer for an application and has a L{FakeCallAudio}."""

    def __init__(self, clock, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.fakeAudio = None


@implementer(IApplicationMediaSession)
class FakeAppReofferMediaSession(_AppMixin, FakeReofferMediaSession):
    """The same, able to place calls (C{construct})."""

    def __init__(self, clock, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.fakeAudio = None


class FakeAppMediaFactory(FakeMediaFactory):
    """Makes L{FakeAppMediaSession}s (L{FakeAppReofferMediaSession}s with C{reoffer=True})."""

    def __init__(self, clock, manual=False, reoffer=True):
        super().__init__(manual=manual, reoffer=reoffer)
        self.clock = clock

    def newSession(self, callId, listener):
        kind = FakeAppReofferMediaSession if self.reoffer else FakeAppMediaSession
        session = kind(self.clock, callId, listener, manual=self.manual)
        self.sessions[callId] = session
        return session


class ApiHarness:
    """
    A L{linkrtc.testing.CallHarness} with a L{CallControl} whose events are
    recorded, and media sessions with L{FakeCallAudio}.

    @ivar clock: the L{Clock}.
    @ivar control: the L{linkrtc.app.control.CallControl}.
    @ivar calls: the L{linkrtc.testing.CallHarness}.
    @ivar events: every notification sent, in order.
    """

    def __init__(self, decideTimeout=5.0, dialer=None, controller=True, **kwargs):
        from twisted.internet.task import Clock

        from linkrtc.app.control import CallControl
        from linkrtc.testing import CallHarness, FakeApplication

        self.clock = Clock()
        self.directory = kwargs.pop("directory", None)
        self.application = kwargs.pop(
            "application", FakeApplication(autoDecision=lambda info: {"action": "api"}))
        self.media = FakeAppMediaFactory(self.clock, reoffer=kwargs.pop("reoffer", False))
        self.control = CallControl(self.clock, decideTimeout=decideTimeout,
                                   conferenceFactory=lambda: FakeConference(self.clock),
                                   dialer=dialer, processId=4242)
        self.calls = CallHarness(clock=self.clock, mediaFactory=self.media,
                                 application=self.application, callControl=self.control,
                                 **kwargs)
        self.control.directory = self.calls.directory
        self.events = []
        self.control.addSink(self.events.append, controller=controller)

    def incoming(self, **kwargs):
        """@return: C{(call, leg)} of a new INVITE the application took."""
        return self.calls.invite(**kwargs)

    def invoke(self, method, **params):
        """
        Call C{method} (C{"answer"} is C{"sys.call.answer"}).

        @return: C{(ok, value)}: the result, or the L{ApiError}.
        """
        if not method.startswith("sys."):
            method = "sys.call." + method
        box = []
        d = self.control.invoke(method, params)
        d.addCallbacks(lambda r: box.append((True, r)), lambda f: box.append((False, f.value)))
        return box[0] if box else (None, d)

    def answered(self, **kwargs):
        """@return: C{(call, leg, audio)} of an incoming call answered by the application."""
        call, leg = self.incoming(**kwargs)
        ok, value = self.invoke("answer", res_id=call.resId)
        assert ok, value
        leg.ack()
        return call, leg, self.audio(call)

    def audio(self, call):
        """@return: the call's L{FakeCallAudio}."""
        return self.media.sessions[call.id].audio()

    def named(self, method, resId=None):
        """@return: the params of the events C{sys.call.METHOD} (for C{resId} if given)."""
        if not method.startswith("sys."):
            method = "sys.call." + method
        return [e["params"] for e in self.events
                if e["method"] == method and (resId is None or e["params"].get("res_id") == resId)]
