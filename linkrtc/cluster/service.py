# -*- test-case-name: linkrtc.cluster.test.test_directory -*-
"""
Building a node of a cluster (C{--redis}, docs/scaling.rst).
"""

from linkrtc.cluster.directory import (
    ClusterDirectory,
    ClusterDirectoryService,
    defaultNodeId,
    nodeAddressFor,
)
from linkrtc.cluster.redirect import ClusterRouter
from linkrtc.config import ConfigError

__all__ = ["makeClusterDirectory"]


def makeClusterDirectory(config, reactor, bindings, parent, store=None):
    """
    The shared client directory and the router of a cluster node.

    @param config: the L{linkrtc.config.LinkRTCConfig} (C{redis},
        C{nodeId}, C{nodeAddress}, C{directoryTTL}, C{sip},
        C{publicAddress}).
    @param reactor: the reactor (an C{IReactorTime} giving UNIX seconds).
    @param bindings: the registrar's L{linkrtc.sip.bindings.BindingTable}.
    @param parent: the C{MultiService} the directory's refresh service
        joins.
    @param store: an L{linkrtc.interfaces.ILocationStore}, or C{None} for
        L{linkrtc.cluster.store.RedisLocationStore} on C{config.redis}.
    @return: C{(ClusterDirectory, ClusterRouter)}.
    @raise ConfigError: when no node address is configured nor found in
        the C{--sip} endpoints.
    """
    address = config.nodeAddress or nodeAddressFor(config.sip, config.publicAddress)
    if address is None:
        raise ConfigError("node-address: needed with --redis when no --sip endpoint "
                          "has a fixed UDP or TCP port")
    if store is None:
        from linkrtc.cluster.store import RedisLocationStore

        store = RedisLocationStore(config.redis)
    directory = ClusterDirectory(store, config.nodeId or defaultNodeId(), address, reactor,
                                 ttl=config.directoryTTL, bindings=bindings)
    ClusterDirectoryService(directory).setServiceParent(parent)
    return directory, ClusterRouter(directory)
