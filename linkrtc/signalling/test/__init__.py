"""linkrtc.signalling.test"""
