"""Bot detection against labelled user agents that ship inside registry packages.

Prints, per corpus, the share flagged by `parse_agent` (bots caught, browsers wrongly flagged) with
the rules before this detector and now, and for a corpus that some of our rules were made from,
the share with those rules left out (the figure of a corpus they never saw); then the cost of classifying one user agent, uncached, with
the old rules, the new ones and ua-parser alone (the part of both that is no bot detection).

Bots:
- Matomo bots: `device-detector` (PyPI), device_detector/tests/fixtures/upstream/bots.yml, Matomo
  Device Detector's bot fixtures. No list we use is Matomo's, but the rules `unrecognised`,
  `engine-comment` and `contact` were written while reading what the lists missed here: their
  blind figures are those of the two corpora below, measured without the list they come from.
- crawler-user-agents instances: `crawler-user-agents` (PyPI), crawleruseragents/
  crawler-user-agents.json, the "instances" of each pattern: that list's own examples, also shown
  without it.
- CrawlerDetect fixtures: the `crawlerdetect` sdist (PyPI), tests/fixtures/user_agent/crawlers.txt:
  CrawlerDetect's own tests, also shown without it.

Browsers:
- fake-useragent browsers: `fake-useragent` (PyPI), fake_useragent/data/browsers.jsonl, browser
  user agents collected from real traffic (recent Chrome, Safari, Edge, Firefox, Samsung
  Internet, Google app, in-app browsers). No rule was written from it.
- Matomo browsers: the other fixtures of `device-detector` (smartphone-*.yml, desktop.yml,
  tablet-*.yml, tv-*.yml…), the entries whose client is a browser: 34,000 user agents of phones,
  TVs, consoles and desktops since the 1990s.
- CrawlerDetect devices: the `crawlerdetect` sdist, tests/fixtures/user_agent/devices.txt (165,000
  user agents its tests must not flag); also shown without CrawlerDetect.
- Matomo apps (for information, no target): apps that send their own user agent (podcast players,
  updaters, in-app browsers).

The sdist is fetched with `pip download` into the cache folder unless --crawlerdetect-sdist names
it; without it those corpora are skipped. Targets: at least 97 % of bots, at most 0.5 % of browsers.

    pip install -e '.[bench]'
    python bench/bots.py                 # every corpus; 30,000 of CrawlerDetect's devices
    python bench/bots.py --devices 0     # all of them (a few minutes)
    python bench/bots.py --show 10       # and the first ten misses and false flags of each
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import user_agents  # noqa: E402
import yaml_rs  # noqa: E402
from crawlerdetect import CrawlerDetect  # noqa: E402

from analytics.bots import PREVIEW_FETCHERS, RULES, Rule, bot_reason  # noqa: E402
from analytics.enrich import parse_agent  # noqa: E402

TIMING_SAMPLE = 2_000  # user agents per corpus that are timed
MAX_AGENT = 1024  # parse_agent's crop


@dataclass(frozen=True)
class Corpus:
    name: str
    kind: str  # "bots", "browsers" or "apps"
    agents: list[str]
    built_from: tuple[str, ...] = ()  # our rules that were made from it (names in RULES)


# --- the corpora ----------------------------------------------------------------------------------


def matomo_corpora() -> list[Corpus]:
    fixtures = importlib.resources.files("device_detector").joinpath("tests/fixtures/upstream")
    bots: list[str] = []
    clients: dict[str, list[str]] = {"browser": [], "mobile app": []}
    for entry in sorted(fixtures.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        for case in yaml_rs.loads(entry.read_text(encoding="utf-8")) or []:
            agent = str(case["user_agent"])
            if entry.name == "bots.yml":
                bots.append(agent)
            elif isinstance(case.get("client"), dict) and case["client"].get("type") in clients:
                clients[case["client"]["type"]].append(agent)
    return [
        Corpus("Matomo bots", "bots", unique(bots), ("unrecognised", "engine-comment", "contact")),
        Corpus("Matomo browsers", "browsers", unique(clients["browser"])),
        Corpus("Matomo apps", "apps", unique(clients["mobile app"])),
    ]


def crawler_list_corpus() -> Corpus:
    source = importlib.resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    entries = json.loads(source.read_text(encoding="utf-8"))
    agents = [agent for entry in entries for agent in entry.get("instances", [])]
    return Corpus("crawler-user-agents instances", "bots", unique(agents), ("crawler-user-agents",))


def fake_useragent_corpus() -> Corpus:
    source = importlib.resources.files("fake_useragent").joinpath("data/browsers.jsonl")
    lines = source.read_text(encoding="utf-8").splitlines()
    agents = [json.loads(line)["useragent"] for line in lines if line.strip()]
    return Corpus("fake-useragent browsers", "browsers", unique(agents))


def crawlerdetect_corpora(sdist: Path | None, devices: int) -> list[Corpus]:
    path = sdist or download_crawlerdetect_sdist()
    if path is None:
        print("CrawlerDetect fixtures skipped: no sdist (pass --crawlerdetect-sdist)")
        return []
    with tarfile.open(path) as archive:
        texts = {
            Path(member.name).name: archive.extractfile(member).read().decode()
            for member in archive.getmembers()
            if member.name.endswith(("user_agent/crawlers.txt", "user_agent/devices.txt"))
        }
    crawlers = unique(line for line in texts["crawlers.txt"].splitlines() if line.strip())
    every = unique(line for line in texts["devices.txt"].splitlines() if line.strip())
    return [
        Corpus("CrawlerDetect fixtures", "bots", crawlers, ("crawlerdetect",)),
        Corpus("CrawlerDetect devices", "browsers", spread(every, devices), ("crawlerdetect",)),
    ]


def download_crawlerdetect_sdist() -> Path | None:
    version = importlib.metadata.version("crawlerdetect")
    folder = Path(tempfile.gettempdir()) / "touchlink-bench-bots"
    found = sorted(folder.glob(f"crawlerdetect-{version}.tar.gz"))
    if found:
        return found[0]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", f"crawlerdetect=={version}", "--no-deps",
         "--no-binary", ":all:", "--quiet", "-d", str(folder)],
        capture_output=True, text=True, check=False,
    )
    found = sorted(folder.glob(f"crawlerdetect-{version}.tar.gz"))
    if done.returncode != 0 or not found:
        print(done.stderr.strip()[-500:])
        return None
    return found[0]


def unique(agents: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(agents))


def spread(agents: list[str], count: int) -> list[str]:
    """`count` of `agents` evenly spaced (all of them for 0)."""
    if count <= 0 or count >= len(agents):
        return agents
    step = len(agents) / count
    return [agents[int(i * step)] for i in range(count)]


# --- the rules before this detector, kept to measure against --------------------------------------


def old_reason(user_agent: str) -> str | None:
    """What parse_agent answered before: previews, ua-parser's spiders, then CrawlerDetect."""
    agent = user_agent.strip()[:MAX_AGENT]
    if not agent:
        return "empty-user-agent"
    parsed = user_agents.parse(agent)
    lowered = agent.lower()
    for needle, name in PREVIEW_FETCHERS:
        if needle in lowered:
            return f"preview:{name}"
    if parsed.is_bot:
        return f"ua:{parsed.browser.family}"
    detector = CrawlerDetect(user_agent=agent)
    if detector.is_crawler():
        return f"crawler:{detector.get_matches() or 'unknown'}"
    return None


# --- measuring ------------------------------------------------------------------------------------


def new_reason(user_agent: str) -> str | None:
    return parse_agent.__wrapped__(user_agent).bot_reason


def reasons_without(agents: Sequence[str], left_out: tuple[str, ...]) -> list[str | None]:
    """What the detector says of `agents` with the rules `left_out` removed."""
    rules: list[Rule] = [rule for name, rule in RULES.items() if name not in left_out]
    found: list[str | None] = []
    for user_agent in agents:
        agent = user_agent.strip()[:MAX_AGENT]
        if not agent:
            found.append("empty-user-agent")
            continue
        parsed = user_agents.parse(agent)
        families = (str(parsed.os.family), str(parsed.browser.family), str(parsed.device.family))
        found.append(bot_reason(agent, spider=bool(parsed.is_bot), families=families, rules=rules))
    return found


def share(reasons: Sequence[str | None]) -> float:
    return 100 * sum(r is not None for r in reasons) / max(1, len(reasons))


def per_agent_us(classify: Callable[[str], Any], agents: Sequence[str]) -> float:
    started = time.perf_counter()
    for agent in agents:
        classify(agent)
    return 1e6 * (time.perf_counter() - started) / len(agents)


def show(corpus: Corpus, reasons: Sequence[str | None], count: int) -> None:
    wrong = [
        (agent, reason)
        for agent, reason in zip(corpus.agents, reasons, strict=True)
        if (reason is None) == (corpus.kind == "bots")
    ]
    label = "missed" if corpus.kind == "bots" else "flagged"
    for agent, reason in wrong[:count]:
        print(f"    {label}: {agent[:150]!r}" + (f"  [{reason}]" if reason else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crawlerdetect-sdist", type=Path, default=None,
                        help="the crawlerdetect .tar.gz (default: pip download it)")
    parser.add_argument("--devices", type=int, default=30_000,
                        help="CrawlerDetect devices to classify, evenly spaced (0: all)")
    parser.add_argument("--show", type=int, default=0, help="misses and false flags to print")
    args = parser.parse_args()

    corpora = [
        *matomo_corpora(),
        crawler_list_corpus(),
        fake_useragent_corpus(),
        *crawlerdetect_corpora(args.crawlerdetect_sdist, args.devices),
    ]
    order = {"bots": 0, "browsers": 1, "apps": 2}
    corpora.sort(key=lambda c: order[c.kind])
    parse_agent("")  # compile the pattern sets before anything is timed

    print(f"{'corpus':32} {'kind':9} {'agents':>8} {'old rules':>10} {'new rules':>10}  without")
    for corpus in corpora:
        old = [old_reason(a) for a in corpus.agents]
        new = [new_reason(a) for a in corpus.agents]
        held_out = ""
        if corpus.built_from:
            without = reasons_without(corpus.agents, corpus.built_from)
            held_out = f"{share(without):6.2f} %  (without {', '.join(corpus.built_from)})"
        print(f"{corpus.name:32} {corpus.kind:9} {len(corpus.agents):8,} "
              f"{share(old):8.2f} % {share(new):8.2f} %  {held_out}")
        if args.show:
            show(corpus, new, args.show)

    timed = [a for c in corpora for a in spread(c.agents, TIMING_SAMPLE)]
    old_us = per_agent_us(old_reason, timed)
    new_us = per_agent_us(new_reason, timed)
    parser_us = per_agent_us(user_agents.parse, timed)
    print(f"\nuncached, over {len(timed):,} user agents ({TIMING_SAMPLE:,} at most per corpus):")
    print(f"  old rules   {old_us:7.1f} µs per user agent")
    print(f"  new rules   {new_us:7.1f} µs per user agent  ({old_us / new_us:.2f}x faster)")
    print(f"  ua-parser   {parser_us:7.1f} µs per user agent  (user_agents.parse alone, in both)")
    print(f"  detection   {old_us - parser_us:7.1f} µs old, {new_us - parser_us:.1f} µs new "
          "(what the rules add to the parse)")


if __name__ == "__main__":
    main()
