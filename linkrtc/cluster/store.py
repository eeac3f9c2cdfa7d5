# -*- test-case-name: linkrtc.cluster.test.test_store -*-
"""
The client locations of a cluster in Redis (docs/scaling.rst, "Redis
keys").

Keys (C{PREFIX} is C{linkrtc:} by default):

  - C{PREFIX client:NAME}: a sorted set of the ids of the nodes where
    client NAME has a connection, each scored with the UNIX time (seconds)
    its entry expires at. The node rewrites its score every third of the
    TTL while the client stays connected; a dead node's members fall out
    of lookups once their score is past, and the whole key expires (Redis
    C{EXPIRE}, the TTL) when no node refreshes it.
  - C{PREFIX node:ID}: the node's SIP address C{HOST:PORT} (where other
    nodes send an INVITE for its clients), with the TTL as C{EX}.

Redis is reached with redis-py's asyncio client (C{redis.asyncio}) on the
reactor's asyncio loop (the process runs on Twisted's asyncio reactor);
each operation returns a L{Deferred}. Its connections come from a
blocking pool: when a burst of INVITEs has every connection busy with a
lookup, the next lookup waits for one (at most L{POOL_WAIT} seconds)
instead of failing at once, as redis-py's default pool does past its
limit ("Too many connections", and the call would get 480).
"""

import asyncio

from twisted.internet.defer import Deferred
from zope.interface import implementer

from linkrtc.interfaces import ILocationStore

__all__ = ["RedisLocationStore", "clientKey", "nodeKey"]

#: The default prefix of every key.
PREFIX = "linkrtc:"

#: Connections to Redis a node opens at most; a lookup holds one for a
#: round trip (well under a millisecond on a LAN).
POOL_SIZE = 16

#: Seconds an operation waits for a free connection, and for Redis's reply.
POOL_WAIT = 2.0

#: A lookup in one round trip (the fast path of a call entering the wrong
#: node; two commands from Python cost twice the client CPU and latency):
#: the ids of the nodes whose entry for the client (KEYS[1]) expires after
#: ARGV[1], newest first, each followed by its address (the key ARGV[2]..id),
#: as a flat list; a node whose address key is gone is left out. It reads
#: keys it is not given, so it needs a standalone Redis (not Redis Cluster).
LOCATE_SCRIPT = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local address = redis.call('GET', ARGV[2] .. id)
  if address then
    out[#out + 1] = id
    out[#out + 1] = address
  end
end
return out
"""


def clientKey(name, prefix=PREFIX):
    """@return: the key of client C{name}'s node set, C{str}."""
    return f"{prefix}client:{name}"


def nodeKey(nodeId, prefix=PREFIX):
    """@return: the key of node C{nodeId}'s SIP address, C{str}."""
    return f"{prefix}node:{nodeId}"


def _deferred(coroutine):
    """Run C{coroutine} on the running asyncio loop; @return: a L{Deferred}."""
    return Deferred.fromFuture(asyncio.ensure_future(coroutine))


@implementer(ILocationStore)
class RedisLocationStore:
    """
    L{ILocationStore} on a Redis server.

    @ivar url: the Redis URL (C{redis://HOST:PORT/DB},
        C{unix:///PATH?db=N}, C{rediss://...}).
    """

    def __init__(self, url, prefix=PREFIX, client=None):
        """
        @param url: the Redis URL (see L{redis.asyncio.from_url}).
        @param prefix: the prefix of every key.
        @param client: a C{redis.asyncio.Redis} to use (tests), or C{None}
            to make one from C{url} on a blocking pool of L{POOL_SIZE}
            connections (opened on first use).
        """
        self.url = url
        self.prefix = prefix
        if client is None:
            import redis.asyncio

            pool = redis.asyncio.BlockingConnectionPool.from_url(
                url, decode_responses=True, max_connections=POOL_SIZE, timeout=POOL_WAIT,
                socket_timeout=POOL_WAIT, socket_connect_timeout=POOL_WAIT)
            client = redis.asyncio.Redis.from_pool(pool)
        self.client = client
        self._locateScript = client.register_script(LOCATE_SCRIPT)

    def publish(self, nodeId, address, names, expiresAt, ttl):
        """See L{ILocationStore.publish}."""
        return _deferred(self._publish(nodeId, address, list(names), expiresAt, ttl))

    async def _publish(self, nodeId, address, names, expiresAt, ttl):
        seconds = max(1, int(round(ttl)))
        pipe = self.client.pipeline(transaction=False)
        pipe.set(nodeKey(nodeId, self.prefix), address, ex=seconds)
        for name in names:
            key = clientKey(name, self.prefix)
            pipe.zadd(key, {nodeId: expiresAt})
            pipe.zremrangebyscore(key, "-inf", f"({expiresAt - ttl}")
            pipe.expire(key, seconds)
        await pipe.execute()

    def withdraw(self, nodeId, name):
        """See L{ILocationStore.withdraw}."""
        return _deferred(self.client.zrem(clientKey(name, self.prefix), nodeId))

    def locate(self, name, now):
        """See L{ILocationStore.locate}."""
        return _deferred(self._locate(name, now))

    async def _locate(self, name, now):
        flat = await self._locateScript(keys=[clientKey(name, self.prefix)],
                                        args=[f"({now}", nodeKey("", self.prefix)])
        return list(zip(flat[::2], flat[1::2]))

    def close(self):
        """See L{ILocationStore.close}."""
        return _deferred(self.client.aclose())
