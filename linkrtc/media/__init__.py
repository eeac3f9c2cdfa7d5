"""linkrtc.media"""
