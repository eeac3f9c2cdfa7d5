"""
The media side of seed 001's CTI actions: play, record, send and receive
DTMF, connect and conference, on a SIP leg's RTP (L{RTPAudio}, the
L{linkrtc.interfaces.ICallAudio} that C{BridgeSession.audio()} returns),
on a browser leg (L{WebRTCAudio}, C{BridgeSession.browserAudio()}) and
L{Conference} (L{linkrtc.interfaces.IConference}).
"""

from linkrtc.media.actions.leg import RTPAudio
from linkrtc.media.actions.mixer import Conference
from linkrtc.media.actions.webrtc_leg import WebRTCAudio

__all__ = ["RTPAudio", "Conference", "WebRTCAudio"]
