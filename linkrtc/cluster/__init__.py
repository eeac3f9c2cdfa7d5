"""
Scale-out: several LinkRTC nodes behind Kamailio sharing one client
directory in Redis (docs/scaling.rst).

L{linkrtc.cluster.directory} publishes which node holds which client's
WebSocket; L{linkrtc.cluster.redirect} sends an INVITE that reaches a node
without the callee's connection on to the node that has it (302);
L{linkrtc.cluster.store} is the Redis side.
"""
