# -*- test-case-name: linkrtc.app.test.test_api -*-
"""
The call-control API in Python, for an application that runs in the
switch's process (C{--application package.module:factory}): the same
methods, parameters and events as the JSON-RPC API (docs/api.rst), with
Deferreds instead of responses and callbacks or async iterators instead of
notifications.

    def factory(switch):                       # --application ivr:factory
        switch.on_incoming(handle)

    async def handle(call):
        await call.answer(max_answer_seconds=600)
        done = await call.receive_dtmf(play_content="menu.wav", max_keys=1)
        ...
        await call.drop()

Every C{sys.call.NAME} method is C{Call.NAME(**params)} (without
C{res_id}) and returns a L{Deferred} that fires with the method's result
or fails with L{linkrtc.error.ApiError}. The action methods have a
waiting form too: C{play}, C{record}, C{send_dtmf}, C{receive_dtmf},
C{connect}, C{conf} start the action and fire with the params of its
C{on_*_completed} event.
"""

from collections import deque
from importlib import import_module

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.app.methods import METHODS

__all__ = ["Switch", "Call", "loadApplication"]

log = Logger()

_CALL = "sys.call."


def _run(callback, *args):
    """Call C{callback}; a coroutine it returns runs as a Deferred; failures are logged."""
    try:
        result = callback(*args)
        if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
            result = defer.ensureDeferred(result)
        if isinstance(result, defer.Deferred):
            result.addErrback(lambda f: log.failure("call-control application failed", f))
    except Exception:
        log.failure("call-control application failed")


class _EventQueue:
    """An async iterator over events (C{(name, params)}) as they come."""

    def __init__(self):
        self.items = deque()
        self.waiting = deque()

    def put(self, item):
        if self.waiting:
            self.waiting.popleft().callback(item)
        else:
            self.items.append(item)

    def __aiter__(self):
        return self

    def __anext__(self):
        if self.items:
            return defer.succeed(self.items.popleft())
        d = defer.Deferred()
        self.waiting.append(d)
        return d


class Call:
    """
    One call resource.

    @ivar res_id: its C{res_id}, C{str}.
    @ivar info: the params of its C{on_incoming} (incoming calls), or C{{}}.
    @ivar released: the params of its C{on_released} once it came, else C{None}.
    """

    def __init__(self, switch, resId, info=None):
        self.switch = switch
        self.res_id = resId
        self.info = info or {}
        self.released = None
        self._callbacks = {}
        self._waiters = {}
        self._queues = []

    def __repr__(self):
        return f"<linkrtc.app.Call {self.res_id}>"

    def invoke(self, name, **params):
        """@return: L{Deferred} of C{sys.call.NAME} on this call."""
        params["res_id"] = self.res_id
        return self.switch.invoke(_CALL + name, **params)

    # -- events ------------------------------------------------------------------------

    def on(self, event, callback):
        """
        Call C{callback(params)} for every C{event} (C{"play_completed"},
        C{"released"}...) of this call; a coroutine it returns is run.
        """
        self._callbacks.setdefault(event, []).append(callback)

    def wait(self, event):
        """@return: a L{Deferred} firing with the params of this call's next C{event}."""
        d = defer.Deferred()
        self._waiters.setdefault(event, deque()).append(d)
        return d

    def events(self):
        """@return: an async iterator of C{(event, params)} for this call's events."""
        queue = _EventQueue()
        self._queues.append(queue)
        return queue

    def _event(self, event, params):
        if event == "released":
            self.released = params
        for queue in self._queues:
            queue.put((event, params))
        waiters = self._waiters.get(event)
        while waiters:
            waiters.popleft().callback(params)
        for callback in list(self._callbacks.get(event, ())):
            _run(callback, params)

    # -- waiting forms of the actions ------------------------------------------------------

    def _startAndWait(self, start, event, params):
        done = self.wait(event)
        started = self.invoke(start, **params)

        def failed(f):
            waiters = self._waiters.get(event)
            if waiters and done in waiters:
                waiters.remove(done)
            return f

        started.addErrback(failed)
        return started.addCallback(lambda _: done)

    def play(self, **params):
        """C{play_start}, then fires with C{on_play_completed}'s params."""
        return self._startAndWait("play_start", "play_completed", params)

    def record(self, **params):
        """C{record_start}, then fires with C{on_record_completed}'s params."""
        return self._startAndWait("record_start", "record_completed", params)

    def send_dtmf(self, **params):
        """C{send_dtmf_start}, then fires with C{on_send_dtmf_completed}'s params."""
        return self._startAndWait("send_dtmf_start", "send_dtmf_completed", params)

    def receive_dtmf(self, **params):
        """C{receive_dtmf_start}, then fires with C{on_receive_dtmf_completed}'s params."""
        return self._startAndWait("receive_dtmf_start", "receive_dtmf_completed", params)

    def connect(self, other, **params):
        """C{connect_start} with C{other} (a L{Call} or C{res_id}), then C{on_connect_completed}."""
        params["call_res_id"] = getattr(other, "res_id", other)
        return self._startAndWait("connect_start", "connect_completed", params)

    def conf(self, conf_res_id, **params):
        """C{conf_enter}, then fires with C{on_conf_completed}'s params."""
        params["conf_res_id"] = conf_res_id
        return self._startAndWait("conf_enter", "conf_completed", params)


def _method(name):
    def method(self, **params):
        return self.invoke(name, **params)

    method.__name__ = name
    method.__doc__ = f"C{{sys.call.{name}}} on this call. @return: L{{Deferred}} of its result."
    return method


for _name in METHODS:
    if _name.startswith(_CALL) and _name not in (_CALL + "construct",):
        _short = _name[len(_CALL):]
        if not hasattr(Call, _short):
            setattr(Call, _short, _method(_short))
del _name, _short


class Switch:
    """
    What an in-process application gets: it takes incoming calls while it
    is open, and hears every event.

    @param control: the L{linkrtc.app.control.CallControl}.
    """

    def __init__(self, control):
        self.control = control
        self.calls = {}
        self._incoming = []
        self._queues = []
        self._sink = self._notification
        control.addSink(self._sink, controller=True)

    def close(self):
        """Stop taking calls (the orphan policy of L{CallControl.removeSink} applies)."""
        self.control.removeSink(self._sink)

    def on_incoming(self, callback):
        """Call C{callback(call)} (a L{Call}) for every new incoming call."""
        self._incoming.append(callback)

    def incoming(self):
        """@return: an async iterator of the new incoming L{Call}s."""
        queue = _EventQueue()
        self._queues.append(queue)
        return queue

    def invoke(self, method, **params):
        """@return: L{Deferred} of any method (C{"sys.conf.construct"}...)."""
        return self.control.invoke(method, params)

    def construct(self, **params):
        """
        C{sys.call.construct}.

        @return: L{Deferred} firing with the new L{Call} (its C{ipsc_info}
            in C{call.info}).
        """
        d = self.invoke(_CALL + "construct", **params)

        def made(result):
            call = self.calls.get(result["res_id"])
            if call is None:
                call = self.calls[result["res_id"]] = Call(self, result["res_id"], result)
            return call

        return d.addCallback(made)

    def call(self, resId):
        """@return: the L{Call} C{resId} (a new handle if not seen yet)."""
        call = self.calls.get(resId)
        if call is None:
            call = self.calls[resId] = Call(self, resId)
        return call

    def _notification(self, notification):
        method = notification["method"]
        params = notification["params"]
        if not method.startswith(_CALL + "on_"):
            return
        event = method[len(_CALL + "on_"):]
        resId = params.get("res_id")
        if event == "incoming":
            call = self.calls[resId] = Call(self, resId, params)
            for queue in self._queues:
                queue.put(call)
            for callback in list(self._incoming):
                _run(callback, call)
            return
        call = self.calls.get(resId)
        if call is None:
            return
        call._event(event, params)
        if event == "released":
            del self.calls[resId]


def loadApplication(spec, control):
    """
    Load C{--application package.module:factory}: import the module and
    call C{factory(switch)} with a new L{Switch}.

    @return: C{(switch, what the factory returned)}.
    @raise ValueError: for a spec that names no callable.
    """
    moduleName, _, attr = spec.partition(":")
    try:
        module = import_module(moduleName)
        factory = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"application {spec!r}: {e}") from None
    if not callable(factory):
        raise ValueError(f"application {spec!r}: {attr} is not callable")
    switch = Switch(control)
    return switch, factory(switch)
