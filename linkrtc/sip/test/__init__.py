"""linkrtc.sip.test"""
