"""Whether a user agent is a bot's, and which rule or list says so.

Rules are tried in order and the first that fires names the reason, so a bot keeps the reason it had
before a rule was added after it:

1. `preview:<fetcher>`: link-preview fetchers of chats and social networks (our own list).
2. `ua:<family>`: ua-parser (the uap-core list, read by `user_agents`) calls it a spider.
3. `crawler:<match>`: CrawlerDetect's maintained patterns, with its own exclusions first.
4. `crawler-user-agents:<match>`: the monperrus crawler-user-agents list, but for the few patterns
   that match real browsers (`_LEFT_OUT_OF_CRAWLER_LIST`).
5. `unrecognised-agent`: ua-parser finds no browser, no OS and no device in it. Every browser
   names at least one; scripts, monitors, scanners and apps fetching on their own do not. A bare
   "Mozilla/5.0" is let through: privacy tools cut browsers' user agents down to it.
6. `engine-comment:<name>`: a name written inside the engine's "(KHTML, like Gecko; …)", where
   fetchers dressed as Chrome put theirs and no browser writes anything.
7. `contact:url` / `contact:email`: an address to reach the operator, which bots give and
   browsers never do.

An Android phone's model (the part after "Android 14;") is left out before 3, 4, 6 and 7: models
are called "M bot 54", "Spider 8" or "Discovery", and the lists match those words. Bots do not
write their name there.

The lists hold about 3,000 regular expressions; matched one after the other they cost more than
the rest of a user agent's parsing, so `PatternSet` factors their literal beginnings into a trie
and asks the list itself only where that found a match.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from crawlerdetect.providers.crawlers import data as _CRAWLERDETECT_PATTERNS
from crawlerdetect.providers.exclusions import data as _CRAWLERDETECT_EXCLUSIONS

# clicks.bot_reason is VARCHAR(64); a reason quoting a long match is cropped to fit.
MAX_REASON = 64

# Link-preview fetchers: a link pasted into a chat or a post is fetched once per conversation to
# draw a card, which is no customer reading it. Matched case-insensitively, first match wins; the
# name is what the fetcher calls itself. Order matters where one fetcher quotes another:
# iMessage presents itself as Facebook and Twitter, Telegram as "like TwitterBot".
# Mail security scanners (Proofpoint, Mimecast, Barracuda, Safe Links) are not listed: they send
# ordinary browser user agents, so no substring identifies them. Office's own link checks are not
# listed either: for a link opened from an Office document that check can be the only request the
# click makes, so it is left to the generic detectors below rather than named a preview.
PREVIEW_FETCHERS: tuple[tuple[str, str], ...] = (
    ("facebot twitterbot", "iMessage"),
    ("slackbot", "Slackbot"),
    ("slack-imgproxy", "Slackbot"),
    ("whatsapp/", "WhatsApp"),
    ("facebookexternalhit", "facebookexternalhit"),
    ("facebot", "Facebot"),
    ("meta-externalfetcher", "meta-externalfetcher"),
    ("telegrambot", "TelegramBot"),
    ("twitterbot", "Twitterbot"),
    ("discordbot", "Discordbot"),
    ("linkedinbot", "LinkedInBot"),
    ("skypeuripreview", "SkypeUriPreview"),
    ("iframely", "Iframely"),
    ("embedly", "Embedly"),
    ("redditbot", "redditbot"),
    ("pinterestbot", "Pinterestbot"),
    ("pinterest/0.", "Pinterestbot"),
    ("vkshare", "vkShare"),
    ("google-pagerenderer", "Google-PageRenderer"),
    ("snap url preview service", "Snap URL Preview Service"),
    ("bluesky cardyb", "Cardyb"),
    ("(mastodon/", "Mastodon"),
    ("bingpreview", "BingPreview"),
    ("yahoo link preview", "Yahoo Link Preview"),
)

# crawler-user-agents patterns that real browsers match: Sogou's mobile browser, the Fluid
# browser for macOS, and a build id of OnePlus and OPPO phones (the list files an Instagram
# in-app browser under it). Sogou's own spiders are still caught, by ua-parser.
_LEFT_OUT_OF_CRAWLER_LIST = frozenset({"Sogou", "Fluid", r"AP3A\.240617\.008"})

# "Android 14; " (and the locale of older versions, "Android 4.2.2; it-it; ") then the model, up
# to the next ";" or ")".
_ANDROID_MODEL = re.compile(r"(Android ?[\d.]*; ?(?:[a-z]{2}[-_][a-zA-Z]{2}; ?)?)[^;)]+")
_ENGINE_COMMENT = re.compile(r"\(KHTML, like Gecko; *(?:compatible; *)?([^;)]+)")
_URL = re.compile(
    r"\bhttps?://|\bwww\.|\b[a-z0-9-]{2,}\.(?:com|net|org|io|ai|app|dev|info)\b", re.IGNORECASE
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b|\[at\]", re.IGNORECASE)
_UNRECOGNISED = ("Other", "Other", "Other")
# Privacy tools and some proxies cut a browser's user agent down to this; CrawlerDetect's own
# fixtures count it a device, not a crawler.
_BARE_MOZILLA = re.compile(r"Mozilla/[\d.]+")


@dataclass(frozen=True, slots=True)
class Reading:
    """A user agent as the rules read it."""

    agent: str  # stripped, not empty
    lowered: str
    plain: str  # without an Android phone's model
    spider: bool  # ua-parser's verdict
    families: tuple[str, str, str]  # ua-parser's OS, browser and device families


Rule = Callable[[Reading], str | None]


def bot_reason(
    agent: str, *, spider: bool, families: tuple[str, str, str], rules: Iterable[Rule] | None = None
) -> str | None:
    """Why `agent` (stripped, not empty) is a bot's, naming the rule that caught it; None for a
    browser. `spider` and `families` (OS, browser, device) are ua-parser's reading of it; `rules`
    are all of `RULES` unless a measurement leaves some out."""
    reading = Reading(
        agent, agent.lower(), _ANDROID_MODEL.sub(r"\1", agent, count=1), spider, families
    )
    for rule in RULES.values() if rules is None else rules:
        if (reason := rule(reading)) is not None:
            return reason[:MAX_REASON]
    return None


def _preview(reading: Reading) -> str | None:
    for needle, name in PREVIEW_FETCHERS:
        if needle in reading.lowered:
            return f"preview:{name}"
    return None


def _ua_parser(reading: Reading) -> str | None:
    return f"ua:{reading.families[1]}" if reading.spider else None


def _crawlerdetect_rule(reading: Reading) -> str | None:
    match = crawlerdetect_match(reading.plain)
    return None if match is None else f"crawler:{match}"


def _crawler_list_rule(reading: Reading) -> str | None:
    match = _crawler_list().find(reading.plain)
    return None if match is None else f"crawler-user-agents:{match}"


def _unrecognised(reading: Reading) -> str | None:
    if reading.families != _UNRECOGNISED or _BARE_MOZILLA.fullmatch(reading.agent):
        return None
    return "unrecognised-agent"


def _engine_comment(reading: Reading) -> str | None:
    comment = _ENGINE_COMMENT.search(reading.plain)
    return None if comment is None else f"engine-comment:{comment[1].strip()}"


def _contact(reading: Reading) -> str | None:
    if _URL.search(reading.plain):
        return "contact:url"
    if _EMAIL.search(reading.plain):
        return "contact:email"
    return None


# In the order they are tried; the names are what measurements refer to.
RULES: dict[str, Rule] = {
    "preview": _preview,
    "ua-parser": _ua_parser,
    "crawlerdetect": _crawlerdetect_rule,
    "crawler-user-agents": _crawler_list_rule,
    "unrecognised": _unrecognised,
    "engine-comment": _engine_comment,
    "contact": _contact,
}


def crawlerdetect_match(agent: str) -> str | None:
    """What CrawlerDetect's `is_crawler` and `get_matches` say of `agent`: the matched text, or
    None for no crawler; the same answer, about ten times sooner."""
    exclusions, crawlers = _crawlerdetect()
    rest = exclusions.sub("", agent)
    return crawlers.find(rest) if rest else None


class PatternSet:
    """Regular expressions asked at once: `find` answers what `re.search("p1|p2|…")` would
    match (the leftmost match, by the first pattern that matches there).

    Python's engine tries every alternative at every position; here the literal beginnings of
    the patterns share a trie, so a position costs one alternative per distinct first character,
    and patterns anchored at the start are tried at the start only. The trie only finds where the
    leftmost match starts (its patterns are rewritten into forms that match the same strings,
    `_finder_forms`); the plain alternation is then asked, at that position, for the pattern
    that wins there.
    """

    __slots__ = ("_anchored", "_exact", "_free")

    def __init__(self, patterns: Sequence[str], flags: int = 0) -> None:
        fold = bool(flags & re.IGNORECASE)
        forms = [form for pattern in patterns for form in _finder_forms(pattern)]
        anchored = [form[1:] for form in forms if _is_anchored(form)]
        free = [form for form in forms if not _is_anchored(form)]
        self._anchored = re.compile(_trie(anchored, fold), flags) if anchored else None
        self._free = re.compile(_trie(free, fold), flags) if free else None
        self._exact = re.compile("|".join(f"(?:{p})" for p in patterns), flags)

    def find(self, text: str) -> str | None:
        """The text that the first pattern matching leftmost matches; None if none does."""
        if self._anchored is not None and self._anchored.match(text):
            start = 0
        elif self._free is not None and (found := self._free.search(text)) is not None:
            start = found.start()
        else:
            return None
        # The trie finds no start that the alternation lacks; were it ever to, the alternation's
        # own search is the answer by definition.
        exact = self._exact.match(text, start) or self._exact.search(text)
        return None if exact is None else exact.group()


@functools.cache  # compiled on first use, once per process
def _crawlerdetect() -> tuple[re.Pattern[str], PatternSet]:
    exclusions = re.compile(f"({'|'.join(_CRAWLERDETECT_EXCLUSIONS)})", re.IGNORECASE)
    return exclusions, PatternSet(_CRAWLERDETECT_PATTERNS, re.IGNORECASE)


@functools.cache
def _crawler_list() -> PatternSet:
    # The list's own tests match it case-sensitively; its patterns spell out the cases they allow.
    source = importlib.resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    entries = json.loads(source.read_text(encoding="utf-8"))
    patterns = [e["pattern"] for e in entries if e["pattern"] not in _LEFT_OUT_OF_CRAWLER_LIST]
    return PatternSet(patterns)


# --- the trie of literal beginnings ---------------------------------------------------------------

_SPECIAL = frozenset(".^$*+?{}[]()|\\")
_QUANTIFIERS = ("*", "+", "?", "{")
_GROUP_START = re.compile(r"\((?!\?)|\(\?:")  # a group, capturing or not; no lookaround
_CLASS_START = re.compile(r"\[(?:\\.|[^\]\\])+\]")
_PLAIN_CLASS = re.compile(r"\[(?:\\\W|[^-^\\\]\[])+\]")  # characters alone, no range
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def _finder_forms(pattern: str) -> list[str]:
    """Patterns that together match where `pattern` does, with literal beginnings where it has
    none: "a|b" is "a" and "b", "[wW]get" is "wget" and "Wget", "(^| )x" is "^x" and " x"."""
    if _BACKREFERENCE.search(pattern):
        return [pattern]
    if len(parts := _split_bars(pattern)) > 1:
        return [form for part in parts for form in _finder_forms(part)]
    if (group := _GROUP_START.match(pattern)) is not None:
        end = next((i for i, char, depth in _structure(pattern) if char == ")" and depth == 0), -1)
        inner, after = pattern[group.end() : end], pattern[end + 1 :]
        if end > 0 and "(" not in inner and not after.startswith(_QUANTIFIERS):
            return [form for part in _split_bars(inner) for form in _finder_forms(part + after)]
    if (leading := _CLASS_START.match(pattern)) is not None:
        after = pattern[leading.end() :]
        if _PLAIN_CLASS.fullmatch(leading[0]) and not after.startswith(_QUANTIFIERS):
            chars = re.sub(r"\\(.)", r"\1", leading[0][1:-1])
            return [form for char in chars for form in _finder_forms(re.escape(char) + after)]
        if after.startswith("*"):
            # A match of [C]*R never starts just after a C: it would start there instead.
            return [f"(?<!{leading[0]}){pattern}"]
    return [pattern]


def _structure(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, group depth after it) of each character outside escapes and classes."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        else:
            depth += (char == "(") - (char == ")")
            yield i, char, depth
        i += 1


def _split_bars(pattern: str) -> list[str]:
    """The alternatives of a pattern's top level."""
    bars = [i for i, char, depth in _structure(pattern) if char == "|" and depth == 0]
    edges = [-1, *bars, len(pattern)]
    return [pattern[a + 1 : b] for a, b in itertools.pairwise(edges)]


def _is_anchored(pattern: str) -> bool:
    return pattern.startswith("^") and len(_split_bars(pattern)) == 1


def _literal_start(pattern: str, fold: bool) -> tuple[str, str]:
    """(the literal characters a pattern must begin with, the pattern after them)."""
    if len(_split_bars(pattern)) > 1:
        return "", pattern
    literal: list[str] = []
    ends: list[int] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            char, i = pattern[i + 1], i + 2  # an escaped punctuation mark stands for itself
        elif char in _SPECIAL:
            break
        else:
            i += 1
        literal.append(char.lower() if fold and char.isascii() else char)
        ends.append(i)
    if literal and i < len(pattern) and pattern[i] in _QUANTIFIERS:
        literal.pop()  # "bots?": the quantifier belongs to the last character
        ends.pop()
    cut = ends[-1] if ends else 0
    return "".join(literal), pattern[cut:]


class _Node:
    __slots__ = ("children", "ends")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[str] = []  # what remains of the patterns whose literal start ends here


def _trie(patterns: Sequence[str], fold: bool) -> str:
    root = _Node()
    for pattern in patterns:
        literal, rest = _literal_start(pattern, fold)
        node = root
        for char in literal:
            node = node.children.setdefault(char, _Node())
        node.ends.append(rest)
    return _branch(root)


def _branch(node: _Node) -> str:
    if "" in node.ends:
        return ""  # a pattern ends here: the rest cannot change whether this position matches
    options = [f"(?:{rest})" for rest in node.ends]
    options += [re.escape(char) + _branch(child) for char, child in node.children.items()]
    return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"
