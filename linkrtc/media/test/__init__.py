"""linkrtc.media.test"""
