"""The twistd plugin: C{twistd linkrtc}. The real code lives in L{linkrtc.tap}."""

from twisted.application.service import ServiceMaker

linkrtc = ServiceMaker(
    "LinkRTC", "linkrtc.tap", "A telephony switch between SIP and WebRTC.", "linkrtc"
)
