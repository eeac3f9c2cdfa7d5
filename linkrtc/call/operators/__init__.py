"""linkrtc.call.operators"""
