"""linkrtc.api.test"""
