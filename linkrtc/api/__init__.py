"""linkrtc.api"""
