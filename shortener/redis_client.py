"""The Redis a process talks to: one server, or a Redis Cluster (TOUCHLINK_REDIS_CLUSTER).

Both clients answer the same commands for keys of one slot, so most code takes either (`Client`).
What differs, and is met here or where it matters:

- a cluster has database 0 only (`database_of`);
- PUBLISH reaches the subscribers of every node, but PUBSUB NUMSUB counts those of the node it
  is asked of: `subscribers` asks the node that the channel's name hashes to, which is where
  `RedisCluster.pubsub()` subscribes;
- a cluster pipeline refuses PUBLISH, PING and EVALSHA, so those are sent on their own;
- a cluster that cannot be reached at all raises `RedisClusterException`, which is no
  `RedisError`: catch `ERRORS`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis import Redis, RedisError
from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Client: TypeAlias = Redis | RedisCluster

ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
# The server, or the node of the cluster a key lives on, is away (rather than refusing a command).
UNREACHABLE: tuple[type[Exception], ...] = (
    RedisConnectionError, RedisTimeoutError, ClusterDownError, RedisClusterException,
)


def connect(url: str, *, cluster: bool, **options: Any) -> Client:
    """A client of the server at `url`, or of the cluster that `url` names a node of."""
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)


def database_of(client: Client) -> int:
    """The database number: pub/sub ignores it, so channel names carry it."""
    if isinstance(client, RedisCluster):
        return 0
    db: int = client.connection_pool.connection_kwargs.get("db", 0)
    return db


def subscribers(client: Client, channel: str) -> int:
    """How many listen on `channel` (on a cluster: at the node its subscribers connect to)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(channel)  # type: ignore[no-untyped-call]
        counts: Any = client.pubsub_numsub(channel, target_nodes=node)
    else:
        counts = client.pubsub_numsub(channel)
    return int(counts[0][1]) if counts else 0
