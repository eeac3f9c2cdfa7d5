"""linkrtc.signalling"""
