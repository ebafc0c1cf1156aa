"""Where pip is configured to find packages, as uv's flags (scripts/pip-install), one word per line.

The first line is an environment assignment for `env` (SSL_CERT_FILE=... when pip is given a certificate
bundle, else a harmless PIP_SOURCES_READ=1); the rest are uv's flags: --index-url, --extra-index-url,
--find-links, --constraint, --no-index. pip's own view of its configuration (`pip config list`: the config
files and PIP_* variables, later ones winning) is the source, so a machine with a local wheel folder or a
mirror installs the same way under uv as under pip."""

from __future__ import annotations

import subprocess
import sys

FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def read(listing: str) -> dict[str, str]:
    """`pip config list` lines ("global.find-links='/opt/wheels'", ":env:.cert='...'") as key -> value."""
    conf: dict[str, str] = {}
    from_env: set[str] = set()
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        scope, _, name = key.partition(".")
        if name in from_env:  # PIP_* variables win over the config files, as in pip
            continue
        conf[name] = value.strip().strip("'\"")
        if scope == ":env:":
            from_env.add(name)
    return conf


def uv_words(conf: dict[str, str]) -> list[str]:
    """The env assignment, then uv's flags, for a pip configuration."""
    cert = conf.get("cert", "")
    words = [f"SSL_CERT_FILE={cert}" if cert else "PIP_SOURCES_READ=1"]
    for key, flag in FLAGS.items():
        for value in conf.get(key, "").split():
            words += [flag, value]
    if conf.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        words.append("--no-index")
    return words


def main() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    print("\n".join(uv_words(read(listing))))


if __name__ == "__main__":
    main()
