# -*- test-case-name: linkrtc.app.test.test_control -*-
"""
The engine side of the call-control API (seed 001): the resources, the
method calls and the events.

L{CallControl} is one per switch. It holds the live resources by
C{res_id} (every call an application controls: incoming calls it took,
calls it dialled; and conferences), takes method calls
(L{CallControl.invoke}: C{"sys.call.answer"} and a C{params} C{dict})
and sends every event (C{"sys.call.on_incoming"}, ...) to its I{sinks}:
the connected C{/api} WebSockets, an in-process application
(L{linkrtc.app.api}) and the webhook.

A method on a call becomes an L{ApiCommandEvent} dispatched to the call,
so the call's state machine decides (L{linkrtc.call.operators.api}); the
L{Resource} does what the operators ask on the media (L{ICallAudio}).

Times in events are Unix seconds (C{int}, seed 001) from the injected
clock.
"""

import os
from collections import OrderedDict

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.app.dial import ringbackFile
from linkrtc.app.errors import (
    FAILED,
    ApiError,
    badParam,
    mediaUnavailable,
    unknownResource,
    wrongState,
)
from linkrtc.app.methods import METHODS, checkParams
from linkrtc.call.events import ApiCommandEvent, MediaResultEvent
from linkrtc.call.operators.api import ACTION_RESULT, ANSWER_TIMER
from linkrtc.call.states import (
    CONF,
    CONNECT,
    DIAL,
    IDLE,
    PLAY,
    RECEIVE_DTMF,
    RECORD,
    RELEASED,
    SEND_DTMF,
    apiStateName,
)
from linkrtc.interfaces import IApplicationMediaSession, ICallAudio

log = Logger()

#: seed 001 C{record_format} -> L{ICallAudio.record}'s C{fmt}.
RECORD_FORMATS = {1: "wav", 2: "alaw", 3: "ulaw", 4: "ima-adpcm", 5: "gsm", 6: "mp3"}

#: Action start method -> (state, event name without C{on_}, audio action name).
ACTIONS = {
    "play_start": (PLAY, "play_completed"),
    "record_start": (RECORD, "record_completed"),
    "send_dtmf_start": (SEND_DTMF, "send_dtmf_completed"),
    "receive_dtmf_start": (RECEIVE_DTMF, "receive_dtmf_completed"),
    "connect_start": (CONNECT, "connect_completed"),
    "conf_enter": (CONF, "conf_completed"),
}

#: Stop method -> the state it stops.
STOPS = {
    "play_stop": PLAY,
    "record_stop": RECORD,
    "stop_receive_dtmf_start": RECEIVE_DTMF,
    "connect_stop": CONNECT,
    "conf_exit": CONF,
}

#: Times a parent's ringback (C{ring_play_file}) repeats at most while dialling.
RINGBACK_REPEAT = 1000

#: Released resources remembered, so that a late method gets "state Released".
RELEASED_MEMORY = 1000

#: What to do with calls when the last application leaves (see L{CallControl}).
ORPHAN_KEEP = "keep"
ORPHAN_DROP = "drop"


def noApplicationMedia(media):
    """
    @return: the L{ApiError} -32003 for a media session that cannot serve
        an application (no L{IApplicationMediaSession}: C{--media
        passthrough}, where the media does not cross LinkRTC).
    """
    mode = getattr(getattr(media, "factory", None), "name", None) or "passthrough"
    return mediaUnavailable(f"media actions unavailable: the call's media ({mode}) does not "
                            "cross LinkRTC; answer, CTI actions, connect and conferences need "
                            "--media bridge")


def unixSeconds(t):
    """@return: C{t} (seconds, C{float} or C{None}) as seed 001's C{int} Unix time, or C{None}."""
    return None if t is None else int(t)


class _Action:
    """
    The CTI action running on a call.

    @ivar method: its start method (C{"play_start"}...), or C{"_connected"}
        (the passive side of a connection) or C{"_dial"} (a parent dialling).
    @ivar state: its state name.
    @ivar begin: clock seconds.
    @ivar stopped: C{True} once its stop method was called.
    @ivar peer: the other L{Resource} (connections, dialling), or C{None}.
    @ivar conf: the L{ConferenceResource} (C{conf_enter}), or C{None}.
    """

    def __init__(self, method, state, begin, peer=None, conf=None):
        self.method = method
        self.state = state
        self.begin = begin
        self.stopped = False
        self.peer = peer
        self.conf = conf
        self.ringing = False


class Resource:
    """
    One call as a seed 001 resource (C{call.api}).

    @ivar resId: the C{res_id} (the call's, as in its CDR).
    @ivar call: the L{linkrtc.call.call.Call}.
    @ivar direction: C{"inbound"} or C{"outbound"}.
    @ivar userData: seed 001 C{user_data}, C{str} or C{None}.
    @ivar maxAnswerSeconds: C{int} or C{None}.
    @ivar action: the running L{_Action} or C{None}.
    @ivar parent: the parent L{Resource} of a dialled call, or C{None}.
    """

    def __init__(self, control, call, direction, userData=None, maxAnswerSeconds=None,
                 parent=None, ringPlayFile=None):
        self.control = control
        self.call = call
        self.resId = call.resId
        self.direction = direction
        self.userData = userData
        self.maxAnswerSeconds = maxAnswerSeconds
        self.parent = parent
        self.ringPlayFile = ringPlayFile
        self.action = None
        self.dialBegin = None

    def __repr__(self):
        return f"<Resource {self.resId} {self.stateName}>"

    @property
    def stateName(self):
        """The seed 001 state name, C{str}."""
        return apiStateName(self.call.state)

    def ipscInfo(self):
        """@return: seed 001 C{ipsc_info}: C{process_id} and the SIP C{call_id}."""
        leg = self.call.leg
        return {"process_id": self.control.processId,
                "call_id": getattr(leg, "callId", None) if leg is not None else None}

    def now(self):
        return self.control.clock.seconds()

    def emit(self, name, **fields):
        """Raise C{sys.call.on_NAME} with C{res_id}, C{fields} and C{user_data}."""
        params = {"res_id": self.resId}
        params.update(fields)
        params["user_data"] = self.userData
        # After the transition: an application acting on the event at once
        # (in-process) finds the call in its new state.
        self.call.afterEvent(lambda: self.control.emit(f"sys.call.on_{name}", params))

    # -- audio ---------------------------------------------------------------------

    def audio(self):
        """
        @return: the call's L{ICallAudio} (C{call.media.audio()}, an
            L{IApplicationMediaSession}).
        @raise ApiError: -32003 when its media gives none (passthrough, or
            no media yet).
        """
        media = self.call.media
        if not IApplicationMediaSession.providedBy(media):
            raise noApplicationMedia(media)
        try:
            audio = media.audio()
        except Exception as e:
            raise mediaUnavailable(f"media actions unavailable: {e}") from None
        if audio is None or not ICallAudio.providedBy(audio):
            raise mediaUnavailable()
        return audio

    # -- Initiated -------------------------------------------------------------------

    def emitIncoming(self):
        """Raise C{on_incoming} (seed 001)."""
        call = self.call
        self.emit("incoming", from_uri=call.fromURI, to_uri=call.toURI,
                  begin_time=unixSeconds(call.beginTime), ipsc_info=self.ipscInfo())

    def startAnswer(self, params):
        """
        C{answer}: the media session answers the SIP offer itself
        (L{IApplicationMediaSession.answerLocally}, no WebRTC peer); its result comes back as
        the L{MediaResultEvent} C{apiAnswer}.

        @raise ApiError: -32003 when the media session cannot.
        """
        media = self.call.media
        if not IApplicationMediaSession.providedBy(media):
            raise noApplicationMedia(media)
        if params.get("user_data") is not None:
            self.userData = params["user_data"]
        if params.get("max_answer_seconds") is not None:
            self.maxAnswerSeconds = params["max_answer_seconds"]
        self.call.whenDone(defer.maybeDeferred(media.answerLocally, self.call.sipOffer),
                           "apiAnswer")

    def answeredNow(self):
        """The call is answered (Idle): C{max_answer_seconds} starts."""
        if self.maxAnswerSeconds:
            self.call.startTimer(ANSWER_TIMER, self.maxAnswerSeconds)

    def redirect(self, uri):
        """Send 302 with C{Contact: <uri>} (RFC 3261 §21.3.3)."""
        call = self.call
        call.finalStatus = 302
        try:
            call.leg.sendFinal(302, headers=(("Contact", f"<{uri}>"),))
        except Exception:
            log.failure("call {call_id}: sending 302 failed", call_id=call.id)

    # -- actions ---------------------------------------------------------------------

    def startAction(self, method, params):
        """
        Start C{method}'s action (in C{Idle}).

        @return: the action's state name, or C{None} if C{method} is not an
            action start.
        @raise ApiError: a bad parameter value, no audio, or the media
            refusing.
        """
        if method == "_connected":
            self.action = _Action(method, CONNECT, self.now(), peer=params["peer"])
            return CONNECT
        if method == "_dial":
            return self._startDial(params)
        if method not in ACTIONS:
            return None
        state = ACTIONS[method][0]
        peer = conf = None
        if method == "connect_start":
            peer = self.control.callResource(params["call_res_id"])
            if peer is self:
                raise badParam("call_res_id", "a call cannot be connected to itself")
            if peer.call.state.name != IDLE:
                raise wrongState("connect_start (call_res_id)", peer.stateName)
        if method == "conf_enter":
            conf = self.control.confResource(params["conf_res_id"])
        audio = self.audio()
        try:
            d = self._run(audio, method, params, peer, conf)
        except ApiError:
            raise
        except Exception as e:
            raise ApiError(FAILED, f"{method} failed: {e}") from None
        self.action = _Action(method, state, self.now(), peer=peer, conf=conf)
        if peer is not None:
            peer.call.dispatch(ApiCommandEvent("_connected", {"peer": self}))
        self.call.whenDone(d, ACTION_RESULT + method)
        return state

    def _run(self, audio, method, p, peer, conf):
        if method == "play_start":
            return audio.play(p["content"], finishKeys=p["finish_keys"] or "")
        if method == "record_start":
            return audio.record(p["record_file"], maxSeconds=p["max_seconds"], beep=p["beep"],
                                finishKeys=p["finish_keys"] or "",
                                fmt=RECORD_FORMATS[p["record_format"]])
        if method == "send_dtmf_start":
            return audio.sendDigits(p["keys"])
        if method == "receive_dtmf_start":
            return audio.receiveDigits(
                validKeys=p["valid_keys"], maxKeys=p["max_keys"], finishKeys=p["finish_keys"],
                firstKeyTimeout=p["first_key_timeout"],
                continuesKeysTimeout=p["continues_keys_timeout"],
                playContent=p["play_content"], playRepeat=p["play_repeat"],
                ifBreakOnKey=p["if_break_on_key"])
        if method == "connect_start":
            return audio.connect(peer.audio(), maxSeconds=p["max_seconds"],
                                 recordPath=p["record_file"] or None,
                                 localVolume=p["local_volume"], remoteVolume=p["remote_volume"],
                                 connectMode=p["connect_mode"],
                                 schedulePlayTime=p["schedule_play_time"],
                                 schedulePlayFile=p["schedule_play_file"] or None,
                                 schedulePlayLoop=p["schedule_play_loop"])
        if method == "conf_enter":
            return conf.enter(self, audio, p)
        raise AssertionError(method)

    def stopAction(self, method, params):
        """
        A stop method in an action state.

        @return: C{True} if it stops the running action (the end follows),
            C{False} if C{method} is not a stop method.
        @raise ApiError: a stop for another action (wrong state), or
            C{connect_stop} on the second party.
        """
        if method not in STOPS:
            return False
        action = self.action
        if action is None or STOPS[method] != action.state:
            raise wrongState(method, self.stateName)
        if method == "connect_stop" and action.method == "_connected":
            raise ApiError(FAILED, "connect_stop is for the first party of the connection "
                           "(the res_id of connect_start)")
        if method == "conf_exit" and params.get("conf_res_id") != action.conf.resId:
            raise badParam("conf_res_id", "not the conference this call is in")
        action.stopped = True
        if method == "conf_exit":
            action.conf.exit(self)
        else:
            self._stopAudio()
        return True

    def _stopAudio(self):
        try:
            self.audio().stop()
        except ApiError:
            pass
        except Exception:
            log.failure("call {call_id}: stopping the audio failed", call_id=self.call.id)

    def actionEnded(self, event):
        """
        The L{MediaResultEvent} C{api.METHOD} of an action: raise its
        C{on_*_completed}.

        @return: C{True} if it ended the running action (the call goes
            back to C{Idle}).
        """
        method = event.operation[len(ACTION_RESULT):]
        action = self.action
        current = action is not None and action.method == method
        if current:
            self.action = None
        if method == "_dial":
            if current and action.ringing:
                self._stopAudio()
            return current
        if method == "_connected":
            return current
        if method not in ACTIONS:
            return False
        result = event.result if event.succeeded and isinstance(event.result, dict) else {}
        error = result.get("error") if event.succeeded else event.failure.getErrorMessage()
        if method == "record_start" and current and action.stopped and error is None:
            error = "stopped by record_stop"  # seed 001: record_stop makes it an error
        begin = result.get("begin_time", action.begin if current else None)
        end = result.get("end_time", self.now())
        fields = {"error": error, "begin_time": unixSeconds(begin),
                  "end_time": unixSeconds(end)}
        if method in ("play_start", "record_start"):
            fields["finish_key"] = result.get("finish_key")
        if method == "receive_dtmf_start":
            fields["keys"] = result.get("keys") or ""
        self.emit(ACTIONS[method][1], **fields)
        if method == "connect_start" and current and action.peer is not None:
            action.peer.call.dispatch(MediaResultEvent(ACTION_RESULT + "_connected", result={}))
        return current

    def digitsArrived(self, digits):
        """DTMF from the SIP side: the audio's actions see it themselves."""

    # -- dialling (construct with a parent) ------------------------------------------

    def _startDial(self, params):
        """
        This call is the parent of C{params["child"]} (C{construct} with
        C{parent_call_res_id}): C{Dial}, hearing the child's
        C{ring_play_file} (or LinkRTC's ringback) until the child's dial
        ends.
        """
        child = params["child"]
        self.action = _Action("_dial", DIAL, self.now(), peer=child)
        ring = child.ringPlayFile
        if ring:
            try:
                audio = self.audio()
                d = defer.maybeDeferred(audio.play, ring, repeat=RINGBACK_REPEAT)
                d.addErrback(lambda f: None)
                self.action.ringing = True
            except ApiError:
                pass
        return DIAL

    def dialAnswered(self):
        """
        The call this application dialled is answered (C{Idle}): raise
        C{on_dial_completed} (C{error} C{null}), free the parent, start
        C{max_answer_seconds}.
        """
        self.answeredNow()
        self.dialEnded(True, None)

    def dialEnded(self, answered, error):
        """
        A call this application dialled left C{Initiated} (answered, or
        failed): raise C{on_dial_completed} once and free its parent.
        """
        if self.dialBegin is None:
            return
        self.dialBegin = None
        self.emit("dial_completed", error=None if answered else error,
                  begin_time=unixSeconds(self.call.beginTime),
                  answer_time=unixSeconds(self.call.answerTime),
                  end_time=unixSeconds(self.now()))
        parent = self.parent
        if parent is not None and parent.action is not None and parent.action.peer is self:
            parent.call.dispatch(MediaResultEvent(ACTION_RESULT + "_dial", result={}))

    # -- the end -----------------------------------------------------------------------

    def released(self):
        """
        The call ended: stop its action, raise C{on_released} with the CDR's
        fields (seed 001), forget the resource.
        """
        call = self.call
        if self.direction == "outbound" and self.dialBegin is not None and call.answerTime is None:
            ending = call.ending
            self.dialEnded(False, ending.reason if ending is not None else "failed")
        if self.action is not None:
            action = self.action
            if action.conf is not None:
                action.conf.exit(self)
            elif action.method == "_connected" and action.peer is not None:
                action.peer._stopAudio()
            else:
                self._stopAudio()
        cdr = call.cdr or call.buildCDR()
        self.emit("released", call_dir=self.direction, from_uri=cdr.get("from_uri"),
                  to_uri=cdr.get("to_uri"), begin_time=unixSeconds(cdr.get("begin_time")),
                  answer_time=unixSeconds(cdr.get("answer_time")),
                  end_time=unixSeconds(cdr.get("end_time")), dropped_by=cdr.get("dropped_by"),
                  cause=cdr.get("cause"), ipsc_info=self.ipscInfo())
        self.control.forget(self)


class ConferenceResource:
    """
    A conference (C{sys.conf.construct}): an L{linkrtc.interfaces.IConference}
    from the media's conference factory, with a C{res_id}.

    @ivar resId: C{"0.0.0-sys.conf-N"}.
    @ivar conference: the L{IConference}.
    @ivar members: C{dict} of call C{res_id} to L{Resource} in it.
    """

    def __init__(self, control, resId, conference, maxSeconds=None, userData=None):
        self.control = control
        self.resId = resId
        self.conference = conference
        self.members = {}
        self.userData = userData
        self.timer = None
        if maxSeconds:
            self.timer = control.clock.callLater(maxSeconds, self.release)

    def enter(self, resource, audio, p):
        """@return: the L{Deferred} of L{IConference.enter}."""
        d = self.conference.enter(audio, maxSeconds=p["max_seconds"], volume=p["volume"],
                                  playFile=p["play_file"], voiceMode=p["voice_mode"])
        self.members[resource.resId] = (resource, audio)

        def left(result):
            self.members.pop(resource.resId, None)
            return result

        return d.addBoth(left)

    def exit(self, resource):
        """Take C{resource} out (its C{enter} Deferred fires)."""
        member = self.members.get(resource.resId)
        if member is not None:
            self.conference.exit(member[1])

    def release(self):
        """Every member leaves; the conference is gone."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        for resource, _audio in list(self.members.values()):
            self.exit(resource)
        self.control.forgetConference(self)


class CallControl:
    """
    The call-control API of one switch.

    @param clock: an C{IReactorTime}; event times are its C{seconds()}.
    @param directory: the L{linkrtc.interfaces.IClientDirectory}.
    @param decideTimeout: seconds an incoming call waits in C{Initiated}
        for C{answer}/C{drop}/C{redirect}/C{route} (the webhook timeout).
    @param conferenceFactory: C{() -> IConference}, or C{None} (then
        C{sys.conf.construct} fails with -32003).
    @param dialer: makes the calls of C{construct}
        (L{linkrtc.app.dial.ApplicationDialer}), or C{None} (-32004).
    @param orphans: L{ORPHAN_KEEP} or L{ORPHAN_DROP}: what happens to the
        controlled calls when the last application sink leaves (see
        L{removeSink}).

    @ivar resources: C{dict} of C{res_id} to L{Resource}.
    @ivar conferences: C{dict} of C{res_id} to L{ConferenceResource}.
    @ivar sinks: the event sinks: callables taking a notification C{dict}
        (C{{"jsonrpc": "2.0", "method": ..., "params": ...}}).
    """

    def __init__(self, clock, directory=None, decideTimeout=5.0, conferenceFactory=None,
                 dialer=None, orphans=ORPHAN_KEEP, processId=None):
        self.clock = clock
        self.directory = directory
        self.decideTimeout = float(decideTimeout)
        self.conferenceFactory = conferenceFactory
        self.dialer = dialer
        self.orphans = orphans
        self.processId = processId if processId is not None else os.getpid()
        self.resources = {}
        self.conferences = {}
        self.sinks = []
        self.controllers = 0
        self._released = OrderedDict()
        self._confSerial = 0

    # -- sinks ---------------------------------------------------------------------

    def addSink(self, sink, controller=True):
        """
        Send every event to C{sink} from now on.

        @param controller: C{True} for an application that takes incoming
            calls (an C{/api} WebSocket, an in-process application);
            C{False} for one that only hears events (the webhook).
        """
        self.sinks.append((sink, controller))
        if controller:
            self.controllers += 1

    def removeSink(self, sink):
        """
        Stop sending events to C{sink}. When the last controlling
        application leaves, its calls still in C{Initiated} are dropped
        (480: nobody will answer them); answered calls are kept until
        their C{max_answer_seconds} when they have one, and dropped
        (cause 200) otherwise, or all dropped with C{orphans="drop"}.
        """
        for i, (s, controller) in enumerate(self.sinks):
            if s == sink:
                del self.sinks[i]
                if controller:
                    self.controllers -= 1
                break
        else:
            return
        if self.controllers == 0:
            self._orphaned()

    def _orphaned(self):
        for resource in list(self.resources.values()):
            state = resource.call.state.name if resource.call.state is not None else None
            keep = (self.orphans == ORPHAN_KEEP and state not in ("Initiated", "Answer")
                    and resource.maxAnswerSeconds)
            if keep:
                continue
            cause = 480 if resource.call.answerTime is None else 200
            resource.call.dispatch(ApiCommandEvent("drop", {"cause": cause}))

    def hasController(self):
        """@return: C{True} while an application that takes calls is connected."""
        return self.controllers > 0

    def emit(self, method, params):
        """Send the notification C{method}(C{params}) to every sink; never raises."""
        notification = {"jsonrpc": "2.0", "method": method, "params": params}
        for sink, _controller in list(self.sinks):
            try:
                sink(notification)
            except Exception:
                log.failure("call-control event {method} to a sink failed", method=method)

    # -- resources -------------------------------------------------------------------

    def adoptIncoming(self, call):
        """Make incoming C{call} a resource (C{call.api}); C{Initiated}."""
        resource = Resource(self, call, "inbound")
        call.api = resource
        self.resources[resource.resId] = resource
        return resource

    def adoptOutgoing(self, call, params, parent=None):
        """Make C{call}, dialled by C{construct}, a resource."""
        resource = Resource(self, call, "outbound", userData=params.get("user_data"),
                            maxAnswerSeconds=params.get("max_answer_seconds"), parent=parent,
                            ringPlayFile=(params.get("ring_play_file") or ringbackFile())
                            if parent else None)
        resource.dialBegin = self.clock.seconds()
        call.api = resource
        self.resources[resource.resId] = resource
        return resource

    def forget(self, resource):
        """C{resource} is released."""
        if self.resources.get(resource.resId) is resource:
            del self.resources[resource.resId]
        self._released[resource.resId] = True
        while len(self._released) > RELEASED_MEMORY:
            self._released.popitem(last=False)

    def callResource(self, resId, param="res_id"):
        """
        @return: the live L{Resource} C{resId}.
        @raise ApiError: -32001 (unknown), -32002 naming C{Released} for
            one released lately.
        """
        resource = self.resources.get(resId)
        if resource is None:
            if resId in self._released:
                raise ApiError(-32002, f"{param} {resId!r} is in state {RELEASED}",
                               {"state": RELEASED, "param": param})
            raise unknownResource(resId)
        return resource

    def confResource(self, resId):
        """@return: the L{ConferenceResource}. @raise ApiError: -32001."""
        conf = self.conferences.get(resId)
        if conf is None:
            raise unknownResource(resId)
        return conf

    def forgetConference(self, conf):
        self.conferences.pop(conf.resId, None)

    # -- methods -----------------------------------------------------------------------

    def invoke(self, method, params):
        """
        Call C{method} with C{params}.

        @param method: C{"sys.call.answer"}, ... (L{METHODS}).
        @param params: the named parameters, a C{dict} (or C{None}).
        @return: a L{Deferred} firing with the method's result (a JSON-able
            value: C{None} for most, C{bool} for C{exists}, C{{"res_id",
            "ipsc_info"}} for the constructors), or failing with
            L{ApiError}.
        """
        try:
            return self._invoke(method, params)
        except ApiError as e:
            return defer.fail(e)
        except Exception:
            log.failure("call-control method {method} failed", method=method)
            return defer.fail(ApiError(-32603, "internal error"))

    def _invoke(self, method, params):
        if method not in METHODS:
            raise ApiError(-32601, f"method not found: {str(method)[:80]}")
        params = checkParams(method, params)
        _sys, kind, short = method.split(".", 2)
        if kind == "conf":
            return defer.succeed(self._conf(short, params))
        if short == "construct":
            return self._construct(params)
        if short == "exists":
            return defer.succeed(params["res_id"] in self.resources)
        resource = self.callResource(params["res_id"])
        d = defer.Deferred()
        resource.call.dispatch(ApiCommandEvent(short, params, d))
        return d

    def _conf(self, short, params):
        if short == "exists":
            return params["res_id"] in self.conferences
        if short == "release":
            self.confResource(params["res_id"]).release()
            return None
        if self.conferenceFactory is None:
            raise mediaUnavailable("media actions unavailable: no conferences")
        self._confSerial += 1
        resId = f"0.0.0-sys.conf-{self.processId}-{self._confSerial}"
        conf = ConferenceResource(self, resId, self.conferenceFactory(),
                                  maxSeconds=params["max_seconds"], userData=params["user_data"])
        self.conferences[resId] = conf
        return {"res_id": resId, "ipsc_info": {"process_id": self.processId}}

    def _construct(self, params):
        if self.dialer is None:
            raise ApiError(FAILED, "outbound calls are not configured")
        parent = None
        if params["parent_call_res_id"] is not None:
            parent = self.callResource(params["parent_call_res_id"], "parent_call_res_id")
            if parent.call.state.name != IDLE:
                raise wrongState("construct (parent_call_res_id)", parent.stateName)
        call = self.dialer.construct(self, params, parent)
        resource = call.api
        if parent is not None:
            parent.call.dispatch(ApiCommandEvent("_dial", {"child": resource}))
        call.start()
        return defer.succeed({"res_id": resource.resId,
                              "ipsc_info": {"process_id": self.processId}})
