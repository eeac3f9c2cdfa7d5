"""linkrtc.test"""
