"""Mail security scanners: the networks they fetch from, and bursts of one touchpoint's links.

Microsoft Safe Links, Proofpoint, Mimecast, Barracuda and the like open every link of an email
within seconds of its delivery, often with a real browser's user agent, so the user agent alone
misses them. Three more signals catch them, each a `bot_reason` starting `scanner:`:

- the fetch says it is a prefetch (`scanner:prefetch`, read at capture: shortener/clicks.py);
- it comes from a network of a known scanner operator (`scanner:<operator>`): the operator's
  autonomous system, named in the ASN data that ships with geoip2fast, or for Microsoft, whose
  autonomous system is also Azure's and its staff's, the ranges Exchange Online Protection sends
  from;
- it is part of a burst (`scanner:burst`): `BURST_LINKS` different links of one touchpoint opened
  within `BURST_SECONDS` from one network (an IPv4 /24, an IPv6 /48) by one user agent, none
  with a referrer (`BurstWatch`). A person tapping through a link page sends its address as the
  referrer; people behind one carrier's addresses mostly differ in their user agents.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
import sys
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections import Counter, defaultdict, deque
from collections.abc import Collection, Iterable
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener.clicks import RawClick
from shortener.models import Link

SCANNER = "scanner:"  # how the bot_reason of a mail scanner's fetch starts

# Autonomous-system names (as GeoLite2 spells them) of services whose business is scanning mail.
# Web proxies that carry people's own browsing (Zscaler, Netskope, Menlo, Forcepoint, Cisco
# Umbrella) are left out on purpose: their clicks are people's.
_OPERATORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), operator)
    for pattern, operator in (
        (r"\bproofpoint", "proofpoint"),
        (r"\bmimecast", "mimecast"),
        (r"\bbarracuda", "barracuda"),
        (r"\bironport", "cisco-ironport"),
        (r"\bmessagelabs", "messagelabs"),
        (r"\btrendmicro\b", "trendmicro"),
        (r"\bfireeye\b|\btrellix", "trellix"),
        (r"\bappriver\b|^zix\b", "zix"),
        (r"^retarus\b", "retarus"),
        (r"\bmicrosoft\b", "microsoft"),  # only its mail protection ranges: see operator()
    )
)

# Exchange Online Protection's outbound ranges (its published SPF record), where Safe Links
# opens links from; as (version, network, mask) integers.
_MICROSOFT_EOP = tuple(
    (net.version, int(net.network_address), int(net.netmask))
    for net in map(
        ipaddress.ip_network,
        (
            "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/15", "52.102.0.0/16", "52.103.0.0/16",
            "104.47.0.0/17", "2a01:111:f400::/48", "2a01:111:f403::/49",
            "2a01:111:f403:8000::/51", "2a01:111:f403:c000::/51", "2a01:111:f403:f000::/52",
        ),
    )
)

BURST_LINKS = 3
BURST_SECONDS = 3.0

T = TypeVar("T")


def operator(number: int, version: int, as_name: str | None) -> str | None:
    """The scanner operator whose network the address `number` (IPv4 or IPv6 by `version`, in
    the autonomous system `as_name`) is."""
    named = _operator_named(as_name) if as_name else None
    if named == "microsoft":  # its autonomous system is also Azure's and its staff's
        eop = any(v == version and number & mask == net for v, net, mask in _MICROSOFT_EOP)
        return named if eop else None
    return named


@functools.lru_cache(maxsize=4096)
def _operator_named(as_name: str) -> str | None:
    for pattern, name in _OPERATORS:
        if pattern.search(as_name):
            return name
    return None


def network_of(ip: str) -> str | None:
    """The network a burst is counted over: the IPv4 /24 (as its first three numbers) or the IPv6
    /48 of `ip` (None if it is not an address)."""
    head, dot, last = ip.rpartition(".")
    if dot and ":" not in head and last.isdigit() and head.count(".") == 2:
        return head  # a dotted quad's first three numbers: the common case, without parsing
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address).rpartition(".")[0]
    return str(ipaddress.ip_network(f"{address}/48", strict=False))


class BurstWatch(Generic[T]):
    """Holds back each click that could be part of a burst until any burst it is in would be over,
    then says which were: `links` different links of one touchpoint opened from one network by
    one user agent within `seconds`. `grace` allows for clicks still on their way from the web
    processes.

    Only clicks without a referrer, of touchpoints with that many links, can be (the caller says
    which touchpoints); the others pass straight through. What is held stays unacknowledged on
    the stream, so a worker that dies holding clicks loses none. Thread-safe: two batches may be
    in flight.
    """

    def __init__(
        self, *, links: int = BURST_LINKS, seconds: float = BURST_SECONDS, grace: float = 1.0
    ) -> None:
        self.links, self.seconds, self.grace = links, seconds, grace
        self._lock = threading.Lock()
        # By click id (a re-read entry is held once): the caller's item, the click, its key.
        self._held: dict[str, tuple[T, RawClick, tuple[int, str, str]]] = {}
        # (due, click id) in arrival order: clicks come nearly in time order, and one that comes
        # late (read again after a restart) is due at once, so it waits no longer than the rest.
        self._queue: deque[tuple[float, str]] = deque()
        # (time, link) of every candidate click lately seen, per (touchpoint, network, agent).
        self._seen: dict[tuple[int, str, str], list[tuple[float, int]]] = defaultdict(list)
        self._next_sweep = 0.0

    def hold(self, items: Iterable[tuple[T, RawClick]], touchpoints: Collection[int]) -> list[T]:
        """Take new clicks (those of `touchpoints` may be held); return those passing through."""
        passing = []
        held, queue, seen = self._held, self._queue, self._seen
        wait = self.seconds + self.grace
        with self._lock:
            for item, click in items:
                if (
                    click.referrer
                    or click.touchpoint_id not in touchpoints
                    or (network := network_of(click.ip)) is None
                ):
                    passing.append(item)
                    continue
                if click.click_id in held:
                    continue
                key = (click.touchpoint_id, network, click.user_agent)
                held[click.click_id] = (item, click, key)
                queue.append((click.at + wait, click.click_id))
                insort(seen[key], (click.at, click.link_id))
        return passing

    def release(self, now: float, *, everything: bool = False) -> tuple[list[T], set[str]]:
        """The held clicks now due (all of them with `everything`), and the ids of those that are
        part of a burst."""
        items: list[T] = []
        due: dict[tuple[int, str, str], list[RawClick]] = defaultdict(list)
        with self._lock:
            queue = self._queue
            while queue and (everything or queue[0][0] <= now):
                _, click_id = queue.popleft()
                item, click, key = self._held.pop(click_id)
                items.append(item)
                due[key].append(click)
            bursts = {click_id for key, clicks in due.items()
                      for click_id in self._in_bursts(key, clicks)}
            if now >= self._next_sweep:
                self._sweep(now)
        return items, bursts

    def next_due(self) -> float | None:
        with self._lock:
            return self._queue[0][0] if self._queue else None

    def __len__(self) -> int:
        return len(self._held)

    def _in_bursts(self, key: tuple[int, str, str], clicks: list[RawClick]) -> list[str]:
        """The ids of `clicks` (of one touchpoint, network and agent) that some span of
        `seconds` around them saw `links` different links in.

        One sweep over what was seen around them, whatever their number: a window slides from
        each click seen (its start) to `seconds` later, counting the links in it, and a click
        is in a burst when a window that holds enough links starts within `seconds` before it.
        A busy network (many people behind one address) sees thousands of clicks in a few
        seconds; a window per click, read whole, would be quadratic in them."""
        seen = self._seen[key]
        if len(seen) < self.links:  # most networks open one link of a touchpoint, if any
            return []
        first, last = min(c.at for c in clicks), max(c.at for c in clicks)
        lo = bisect_left(seen, (first - self.seconds, -1))
        hi = bisect_right(seen, (last, sys.maxsize))
        # bursting[n]: windows with enough links among those starting at seen[lo : lo + n].
        bursting, links, end = [0], Counter[int](), lo
        for i in range(lo, hi):
            limit = seen[i][0] + self.seconds
            while end < len(seen) and seen[end][0] <= limit:
                links[seen[end][1]] += 1
                end += 1
            bursting.append(bursting[-1] + (len(links) >= self.links))
            link = seen[i][1]
            links[link] -= 1
            if not links[link]:
                del links[link]
        found = []
        for click in clicks:
            starts = bisect_left(seen, (click.at - self.seconds, -1))
            ends = bisect_right(seen, (click.at, sys.maxsize))
            if bursting[ends - lo] > bursting[starts - lo]:
                found.append(click.click_id)
        return found

    def _sweep(self, now: float) -> None:
        """Forget what no held or coming click can be in a burst with (a minute's slack for late
        entries)."""
        horizon = now - 60.0
        for key in list(self._seen):
            seen = self._seen[key]
            del seen[: bisect_left(seen, (horizon, -1))]
            if not seen:
                del self._seen[key]
        self._next_sweep = now + 10.0


class MultiLinkTouchpoints:
    """The touchpoints with enough links for a burst, read again every `ttl` seconds."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._ids: frozenset[int] = frozenset()
        self._read_at = -math.inf

    def ids(self, session: Session) -> frozenset[int]:
        if time.monotonic() - self._read_at >= self.ttl:
            rows = session.scalars(
                select(Link.touchpoint_id)
                .group_by(Link.touchpoint_id)
                .having(func.count() >= BURST_LINKS)
            )
            self._ids, self._read_at = frozenset(rows), time.monotonic()
        return self._ids
