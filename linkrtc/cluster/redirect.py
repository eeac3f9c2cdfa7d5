# -*- test-case-name: linkrtc.cluster.test.test_redirect -*-
"""
Cross-node delivery of incoming calls (docs/scaling.rst, "Which node
bridges"): an INVITE reaching a node that has no connection for the
callee (the Request-URI user), while the cluster directory says another
node has one, is answered 302 (Moved Temporarily, RFC 3261 §21.3.3) with
C{Contact: <sip:CALLEE@OTHER-NODE>}. Kamailio follows it
(etc/kamailio/kamailio.cfg, C{get_redirects}), so the call is set up,
and bridged, by the node that holds the client's WebSocket; the first
node keeps nothing of it.
"""

from twisted.logger import Logger

from linkrtc.metrics import CLUSTER_INVITES
from linkrtc.signalling.messages import isValidClientName

__all__ = ["ClusterRouter"]

log = Logger()


def _calleeOf(leg):
    uri = getattr(leg.request, "uri", None)
    return getattr(uri, "user", None)


class ClusterRouter:
    """
    Takes the INVITEs for clients of other nodes.

    @ivar directory: the L{linkrtc.interfaces.IClusterDirectory}.
    """

    def __init__(self, directory):
        self.directory = directory

    def takes(self, leg, local):
        """
        Decide where the INVITE of C{leg} is handled.

        @param leg: the new L{linkrtc.interfaces.ISIPServerLeg}.
        @param local: a callable taking C{leg}: the call manager's own
            handling (a call on this node), used when no other node holds
            the callee.
        @return: C{False} when the call is this node's at once (the callee
            has a connection or SIP contact here, or is no client name);
            C{True} when this router took C{leg}: it answers 302 or hands
            it to C{local} once the directory has answered.
        """
        callee = _calleeOf(leg)
        if not isValidClientName(callee):
            return False
        if self.directory.connectionsFor(callee) or self.directory.sipContactsFor(callee):
            return False
        d = self.directory.locate(callee)
        d.addCallback(self._located, leg, callee, local)
        d.addErrback(lambda f: log.failure("cluster: routing an INVITE failed", f))
        return True

    def _located(self, address, leg, callee, local):
        if getattr(leg, "finalSent", False) or getattr(leg, "state", None) == "terminated":
            return  # cancelled while the directory answered (487 sent)
        if address is None or self.directory.connectionsFor(callee):
            CLUSTER_INVITES.labels(result="local").inc()
            local(leg)
            return
        CLUSTER_INVITES.labels(result="redirected").inc()
        log.info("cluster: INVITE for {callee} redirected to node {address}", callee=callee,
                 address=address)
        leg.sendFinal(302, "Moved Temporarily",
                      headers=[("Contact", f"<sip:{callee}@{address}>")])
