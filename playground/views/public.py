"""What a visitor of a locked instance may read: text with the host's paths, the engines' ports and
API keys taken out (pure string work; the shell says which strings are private)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

# A /-rooted path: starts the text or follows a space, quote, bracket or '=' (not "tok/s" or a URL path).
_ABSOLUTE = re.compile(r"(?<![\w.~/:-])/(?:[\w.@+-]+/?)+")
HIDDEN_KEY = "(key hidden)"
# Keys shorter than this are not taken out: replacing "k" everywhere broke every card and the charts'
# JSON ("mar(key hidden)er"). Launched engines' keys are 32 characters; an operator's attached
# endpoint with a shorter key is not kept secret by this scrubber (README, locked mode).
MIN_KEY_CHARS = 8
HIDDEN_ENGINE = "(engine)"


@dataclass(frozen=True)
class Private:
    """The strings of this host a visitor must not see."""

    paths: tuple[str, ...] = ()  # shown as their last component (a local model as its folder name)
    ports: tuple[int, ...] = ()  # the engines' ports: an address with one becomes "(engine)"
    keys: tuple[str, ...] = ()  # API keys, shown as "(key hidden)"


def public_name(path: str) -> str:
    """A host path as a visitor sees it: its last component (a model folder's name)."""
    return PurePosixPath(path.rstrip("/")).name or "(path)"


def scrub(text: str, private: Private, is_host_path: Callable[[str], bool] = lambda _: False) -> str:
    """`text` without the private strings: known paths and any /-rooted path `is_host_path` accepts
    become their last component, addresses on an engine port "(engine)", keys "(key hidden)"."""
    for key in sorted(private.keys, key=len, reverse=True):
        if len(key) >= MIN_KEY_CHARS:  # a one-letter "key" would be cut out of every word, JSON keys too
            text = text.replace(key, HIDDEN_KEY)
    # Whole paths first (a log file shows as its name), then what is left of the known ones.
    # Each pass runs only where its text can match: a streamed answer is scrubbed at every update.
    if "/" in text:
        text = _ABSOLUTE.sub(lambda m: public_name(m.group(0)) if is_host_path(m.group(0)) else m.group(0), text)
        for path in sorted(private.paths, key=len, reverse=True):
            if path and path != "/":
                text = text.replace(path.rstrip("/"), public_name(path))
    for port in (p for p in private.ports if str(p) in text):  # after the paths: a log is named after its port
        address = rf"(?:https?://)?(?:[\w.-]+|\[[0-9a-fA-F:]+\]):{port}\b(?:/[\w/.-]*)?"
        text = re.sub(address, HIDDEN_ENGINE, text)
        text = re.sub(rf"\bport {port}\b|(?<=-){port}(?=\.log\b)", HIDDEN_ENGINE, text)
    return text


def scrub_value(value: object, private: Private, is_host_path: Callable[[str], bool] = lambda _: False) -> object:
    """Every string inside `value` (lists, tuples, dicts' values) scrubbed; other values as they are."""
    if isinstance(value, str):
        return scrub(value, private, is_host_path)
    if isinstance(value, list):
        return [scrub_value(v, private, is_host_path) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(v, private, is_host_path) for v in value)
    if isinstance(value, dict):
        return {k: scrub_value(v, private, is_host_path) for k, v in value.items()}
    return value
