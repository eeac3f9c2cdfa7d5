"""
The media side of seed 001's CTI actions: play, record, send and receive
DTMF, connect and conference, on a SIP leg's RTP (L{RTPAudio}, the
L{linkrtc.interfaces.ICallAudio} that C{BridgeSession.audio()} returns)
and L{Conference} (L{linkrtc.interfaces.IConference}).
"""

from linkrtc.media.actions.leg import RTPAudio
from linkrtc.media.actions.mixer import Conference

__all__ = ["RTPAudio", "Conference"]
