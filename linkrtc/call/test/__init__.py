"""linkrtc.call.test"""
