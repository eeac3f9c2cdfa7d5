"""
End-to-end tests: a real C{twistd -n linkrtc} process and real peers
(SIPp, baresip, Chromium, aiortc clients).

On a developer's machine a test whose peer is missing is skipped; in CI
(C{CI=true}) it fails instead.
"""
