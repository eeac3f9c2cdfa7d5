"""
A call-control application (seed 001) for end-to-end tests: it connects
to LinkRTC's WebSocket C{/api} (JSON-RPC 2.0, autobahn on asyncio like
C{wsclient.py}), runs one script and prints every notification it gets,
and each of its own steps, as JSON lines on stdout; the last line is
C{{"type": "done", ...}} or C{{"type": "app-error", ...}}.

Scripts:
  - C{ivr}: take the first call, answer, play C{--prompt}, collect one
    digit (RFC 4733), record the caller for C{--record-seconds} into
    C{--record}, construct a call to C{client:CLIENT} with the caller as
    parent, connect the two for C{--talk} seconds, drop both.
  - C{conf}: make a conference, answer C{--parties} calls and put each
    into it, keep them C{--talk} seconds, drop them.

    python apiapp.py ws://127.0.0.1:8080/api ivr --prompt p.wav --record r.wav
"""

import argparse
import asyncio
import json
import os
import sys

from autobahn.asyncio.websocket import WebSocketClientProtocol

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.wsclient import connect  # noqa: E402


def emit(message):
    print(json.dumps(message), flush=True)


class AppProtocol(WebSocketClientProtocol):
    """JSON-RPC 2.0 over the WebSocket: calls by id, notifications kept until claimed."""

    def onOpen(self):
        self.serial = 0
        self.pending = {}
        self.notifications = []
        self.waiters = []
        emit({"type": "open"})
        task = asyncio.ensure_future(self.run())
        task.add_done_callback(self.finished)

    def finished(self, task):
        if task.exception() is not None:
            emit({"type": "app-error", "error": repr(task.exception())})
        self.sendClose()
        if not self.done.done():
            self.done.set_result(None)

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        if "id" in message and message.get("id") in self.pending:
            future = self.pending.pop(message["id"])
            if "error" in message:
                future.set_exception(RuntimeError(json.dumps(message["error"])))
            else:
                future.set_result(message.get("result"))
            return
        emit(message)
        self.notifications.append(message)
        self.wake()

    def onClose(self, wasClean, code, reason):
        if not self.done.done():
            self.done.set_result(None)

    def wake(self):
        for predicate, future in list(self.waiters):
            for message in self.notifications:
                if predicate(message):
                    self.notifications.remove(message)
                    self.waiters.remove((predicate, future))
                    future.set_result(message["params"])
                    break

    async def call(self, method, **params):
        """@return: the result of C{method}; raises on a JSON-RPC error."""
        if not method.startswith("sys."):
            method = "sys.call." + method
        self.serial += 1
        future = asyncio.get_event_loop().create_future()
        self.pending[self.serial] = future
        self.sendMessage(json.dumps({"jsonrpc": "2.0", "id": self.serial, "method": method,
                                     "params": params}).encode())
        result = await asyncio.wait_for(future, 10)
        emit({"type": "result", "method": method, "result": result})
        return result

    async def event(self, name, resId=None, timeout=30):
        """@return: the params of the next C{sys.call.on_NAME} (for C{resId})."""
        method = "sys.call.on_" + name

        def predicate(message):
            return message.get("method") == method and (
                resId is None or message["params"].get("res_id") == resId)

        future = asyncio.get_event_loop().create_future()
        self.waiters.append((predicate, future))
        self.wake()
        return await asyncio.wait_for(future, timeout)

    async def run(self):
        await getattr(self, "script_" + self.options.script)(self.options)

    async def script_ivr(self, o):
        incoming = await self.event("incoming")
        caller = incoming["res_id"]
        await self.call("answer", res_id=caller, max_answer_seconds=120, user_data="ivr")
        await self.call("play_start", res_id=caller, content=o.prompt)
        played = await self.event("play_completed", caller)
        await self.call("receive_dtmf_start", res_id=caller, max_keys=1, finish_keys="",
                        first_key_timeout=20)
        # Only once the collector runs: a key sent before it would be lost.
        emit({"type": "step", "name": "receiving"})
        digits = await self.event("receive_dtmf_completed", caller)
        await self.call("record_start", res_id=caller, record_file=o.record,
                        max_seconds=o.record_seconds)
        recorded = await self.event("record_completed", caller)
        made = await self.call("construct", to_uri=f"client:{o.client}",
                               from_uri="sip:ivr@linkrtc.invalid", parent_call_res_id=caller,
                               max_ring_seconds=20, max_answer_seconds=120, user_data="agent")
        agent = made["res_id"]
        dialled = await self.event("dial_completed", agent)
        await self.call("connect_start", res_id=caller, call_res_id=agent)
        emit({"type": "step", "name": "connected"})
        await asyncio.sleep(o.talk)
        await self.call("connect_stop", res_id=caller)
        connected = await self.event("connect_completed", caller)
        await self.call("drop", res_id=agent, cause=200)
        await self.call("drop", res_id=caller, cause=200)
        released = [await self.event("released", agent), await self.event("released", caller)]
        emit({"type": "done", "played": played, "digits": digits, "recorded": recorded,
              "dialled": dialled, "connected": connected, "released": released})

    async def script_conf(self, o):
        made = await self.call("sys.conf.construct", max_seconds=120)
        conf = made["res_id"]
        parties = []
        for _ in range(o.parties):
            incoming = await self.event("incoming")
            resId = incoming["res_id"]
            await self.call("answer", res_id=resId, max_answer_seconds=120)
            await self.call("conf_enter", res_id=resId, conf_res_id=conf)
            parties.append(resId)
            emit({"type": "step", "name": "entered", "res_id": resId})
        emit({"type": "step", "name": "all entered"})
        await asyncio.sleep(o.talk)
        completed = []
        for resId in parties:
            await self.call("drop", res_id=resId, cause=200)
        for resId in parties:
            completed.append(await self.event("conf_completed", resId))
        await self.call("sys.conf.release", res_id=conf)
        emit({"type": "done", "parties": parties, "completed": completed})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("script", choices=["ivr", "conf"])
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--record", default=None)
    parser.add_argument("--record-seconds", type=int, default=3)
    parser.add_argument("--client", default="alice")
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds")
    parser.add_argument("--lifetime", type=float, default=60.0, help="seconds")
    options = parser.parse_args()
    loop = connect(AppProtocol, options)
    try:
        loop.run_until_complete(asyncio.wait_for(AppProtocol.done, options.lifetime))
    except asyncio.TimeoutError:
        emit({"type": "app-error", "error": "lifetime over"})


if __name__ == "__main__":
    main()
