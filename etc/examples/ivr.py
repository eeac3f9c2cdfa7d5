"""
An IVR on LinkRTC's call-control API (seed 001, docs/api.rst), run in the
switch's process:

    twistd -n linkrtc --application ivr:factory      # etc/examples on PYTHONPATH

Every incoming call is answered; a menu is played while one key is
collected: 1 connects the caller to the browser client C{agent} (a call
LinkRTC dials to it), 2 records a message; any other key, or none, says
goodbye. Then the call is hung up. C{LINKRTC_IVR_SOUNDS},
C{LINKRTC_IVR_AGENT} and C{LINKRTC_IVR_MESSAGES} in the environment change
where the prompts are, whom 1 calls and where messages go.
"""

import os

from linkrtc.error import ApiError

#: The prompts' directory (C{LINKRTC_IVR_SOUNDS} in the environment overrides it).
SOUNDS = os.environ.get("LINKRTC_IVR_SOUNDS", "/usr/share/linkrtc/ivr")
MENU = os.path.join(SOUNDS, "menu.wav")
GOODBYE = os.path.join(SOUNDS, "goodbye.wav")
AGENT = os.environ.get("LINKRTC_IVR_AGENT", "client:agent")
MESSAGES = os.path.join(os.environ.get("LINKRTC_IVR_MESSAGES", "/var/spool/linkrtc"),
                        "message-{res_id}.wav")


def factory(switch):
    """C{--application ivr:factory}: take every incoming call."""
    switch.on_incoming(lambda call: handle(switch, call))
    return switch


async def handle(switch, call):
    """One caller's way through the menu."""
    try:
        await call.answer(max_answer_seconds=600, user_data="ivr")
        menu = await call.receive_dtmf(play_content=MENU, max_keys=1, finish_keys="",
                                       first_key_timeout=10)
        key = menu["keys"]
        if key == "1" and await connectAgent(switch, call):
            return
        if key == "2":
            await call.record(record_file=MESSAGES.format(res_id=call.res_id),
                              max_seconds=60, beep=True, finish_keys="#")
        await call.play(content=GOODBYE)
        await call.drop(cause=200)
    except ApiError:
        if call.released is None:  # not a hang-up: give up on this caller
            await call.drop(cause=500)


async def connectAgent(switch, call):
    """
    Dial the agent's browser with the caller as parent (the caller hears
    ringing), connect both until one hangs up.

    @return: C{True} if the agent answered.
    """
    try:
        agent = await switch.construct(to_uri=AGENT, parent_call_res_id=call.res_id,
                                       max_answer_seconds=600)
    except ApiError:
        return False
    dialled = await agent.wait("dial_completed")
    if dialled["error"] is not None:
        return False
    await call.connect(agent)
    if call.released is None:
        await call.drop(cause=200)
    if agent.released is None:
        await agent.drop(cause=200)
    return True
