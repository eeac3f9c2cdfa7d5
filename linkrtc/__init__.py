"""
LinkRTC: a telephony switch between SIP and WebRTC, built on Twisted.

Layers, bottom up: L{linkrtc.sip} (RFC 3261 stack), L{linkrtc.media}
(SDP, RTP, the WebRTC bridge), L{linkrtc.call} (the call engine of States
and Operators), L{linkrtc.signalling} (the WebSocket protocol for WebRTC
clients), L{linkrtc.api} (webhooks and the call-control API), and
L{linkrtc.service} which wires them into one Twisted service.
"""

from linkrtc._version import __version__

__all__ = ["__version__"]
