"""linkrtc.call"""
