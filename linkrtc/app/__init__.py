"""
The call-control API (seed 001, C{sys.call.*}): calls as resources an
application drives, in process (L{linkrtc.app.api}) or over JSON-RPC 2.0
(C{/api}, WebSocket and HTTP); docs/api.rst.
"""
