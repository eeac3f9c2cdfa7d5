# -*- test-case-name: linkrtc.cluster.test.test_directory -*-
"""
The client directory of a node in a cluster (C{--redis}): the node's own
connections as in L{linkrtc.signalling.directory.ClientDirectory}, and
their names published to an L{ILocationStore} (Redis) so the other nodes
can find which node holds a client (docs/scaling.rst).

A name is published when its first connection registers on this node,
withdrawn when its last one goes, and refreshed every third of the TTL
while it stays; a node that dies stops refreshing and its names expire
from the store after at most the TTL.
"""

import os
import socket

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.interfaces import IClusterDirectory
from linkrtc.metrics import CLUSTER_STORE_ERRORS
from linkrtc.signalling.directory import ClientDirectory

__all__ = ["ClusterDirectory", "ClusterDirectoryService", "defaultNodeId", "nodeAddressFor"]

log = Logger()

#: Seconds a published name lives in the store without a refresh.
DEFAULT_TTL = 30.0


def defaultNodeId():
    """@return: C{"HOSTNAME-PID"}, this process's default node id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def nodeAddressFor(sipEndpoints, publicAddress=None):
    """
    The SIP address other nodes (and Kamailio, following a 302) reach this
    node at, from its first UDP or TCP SIP endpoint: the endpoint's
    C{interface} (or C{publicAddress}, or the host name's address for a
    wildcard interface) and its port.

    @param sipEndpoints: the C{--sip} endpoint strings
        (C{"udp:5060:interface=127.0.0.1"}).
    @param publicAddress: C{--public-address} or C{None}.
    @return: C{"HOST:PORT"}, or C{None} when no UDP/TCP endpoint has a
        fixed port.
    """
    for spec in sipEndpoints:
        parts = spec.split(":")
        if parts[0] not in ("udp", "tcp") or len(parts) < 2:
            continue
        port = parts[1][5:] if parts[1].startswith("port=") else parts[1]
        if not port.isdigit() or int(port) == 0:
            continue
        host = None
        for part in parts[2:]:
            if part.startswith("interface="):
                host = part[len("interface="):]
        if publicAddress:
            host = publicAddress
        elif host in (None, "", "0.0.0.0", "::"):
            host = socket.gethostbyname(socket.gethostname())
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{port}"
    return None


@implementer(IClusterDirectory)
class ClusterDirectory(ClientDirectory):
    """
    A L{ClientDirectory} whose names are also published to a store.

    @ivar store: the L{ILocationStore}.
    @ivar nodeId: this node's id, C{str}.
    @ivar address: this node's SIP address C{"HOST:PORT"}.
    @ivar ttl: seconds a published name lives without a refresh.
    """

    def __init__(self, store, nodeId, address, clock, ttl=DEFAULT_TTL, bindings=None):
        """
        @param store: an L{ILocationStore}.
        @param nodeId: this node's id (C{--node-id}).
        @param address: this node's SIP address, C{"HOST:PORT"}.
        @param clock: an C{IReactorTime}; its C{seconds()} is UNIX time
            (the stores' expiry scores).
        @param ttl: seconds (C{--directory-ttl}); refreshed every C{ttl / 3}.
        @param bindings: see L{ClientDirectory}.
        """
        super().__init__(clock=clock, bindings=bindings)
        self.store = store
        self.nodeId = nodeId
        self.address = address
        self.ttl = float(ttl)
        self._loop = None

    # -- the node's own connections, published ---------------------------------

    def register(self, name, connection, trace=False):
        """See L{ClientDirectory.register}; a new name is published at once."""
        before = set(self._byName)
        super().register(name, connection, trace)
        self._changed(before)

    def unregister(self, connection):
        """See L{ClientDirectory.unregister}; a name left with no connection is withdrawn."""
        before = set(self._byName)
        name = super().unregister(connection)
        self._changed(before)
        return name

    def _changed(self, before):
        after = set(self._byName)
        added = sorted(after - before)
        if added:
            self._watch(self._publish(added), "publish")
        for name in sorted(before - after):
            self._watch(self.store.withdraw(self.nodeId, name), "withdraw")

    def _publish(self, names):
        now = self.clock.seconds()
        return self.store.publish(self.nodeId, self.address, names, now + self.ttl, self.ttl)

    def _watch(self, d, what):
        def failed(failure):
            CLUSTER_STORE_ERRORS.labels(operation=what).inc()
            log.warn("cluster directory: {what} in the store failed: {error}", what=what,
                     error=failure.getErrorMessage())

        d.addErrback(failed)
        return d

    def refresh(self):
        """
        Publish every name of this node again with a new expiry (and the
        node's address, even with no names).

        @return: a L{Deferred} firing with C{None} (it never fails).
        """
        return self._watch(self._publish(self.names()), "refresh")

    def start(self):
        """Refresh now and every C{ttl / 3} seconds."""
        if self._loop is None:
            self._loop = task.LoopingCall(self.refresh)
            self._loop.clock = self.clock
            self._loop.start(self.ttl / 3.0, now=True)

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop refreshing and withdraw every name of this node (a node that
        stops cleanly leaves no entry behind), then close the store.

        @return: a L{Deferred} firing with C{None}.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for name in self.names():
            yield self._watch(self.store.withdraw(self.nodeId, name), "withdraw")
        yield self._watch(defer.maybeDeferred(self.store.close), "close")

    # -- other nodes' clients ----------------------------------------------------

    def locate(self, name):
        """See L{IClusterDirectory.locate}."""
        d = self.store.locate(name, self.clock.seconds())

        def found(entries):
            for nodeId, address in entries:
                if nodeId != self.nodeId:
                    return address
            return None

        def failed(failure):
            CLUSTER_STORE_ERRORS.labels(operation="locate").inc()
            log.warn("cluster directory: looking up {name} failed: {error}", name=name,
                     error=failure.getErrorMessage())
            return None

        return d.addCallbacks(found, failed)


class ClusterDirectoryService(Service):
    """Runs a L{ClusterDirectory}'s refresh while LinkRTC runs."""

    name = "cluster"

    def __init__(self, directory):
        self.directory = directory

    def startService(self):
        super().startService()
        self.directory.start()

    def stopService(self):
        super().stopService()
        return self.directory.stop()
