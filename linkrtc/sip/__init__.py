"""linkrtc.sip"""
