"""scripts/pip_sources.py: pip's configured sources handed to uv (scripts/pip-install), read from the
lines `pip config list` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from pip_sources import read, uv_words  # noqa: E402

LISTING = """:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.cert='/somewhere/else.pem'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/other/wheels'
"""


def test_environment_wins_and_lists_split() -> None:
    conf = read(LISTING)
    assert conf["cert"] == "/etc/ssl/certs/ca-certificates.crt"  # PIP_CERT over the config file
    assert conf["find-links"] == "/opt/wheels"
    assert uv_words(conf) == [
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "--extra-index-url",
        "file:///opt/pypi/simple",
        "--extra-index-url",
        "file:///opt/pypi-more/simple",
        "--find-links",
        "/opt/wheels",
        "--constraint",
        "/etc/xdg/pip/constraints.txt",
    ]


def test_no_configuration_and_no_index() -> None:
    assert uv_words(read("")) == ["PIP_SOURCES_READ=1"]
    assert uv_words(read("global.no-index='true'\nglobal.index-url='https://mirror/simple'")) == [
        "PIP_SOURCES_READ=1",
        "--index-url",
        "https://mirror/simple",
        "--no-index",
    ]


def test_this_machines_pip_gives_env_then_flags() -> None:
    """The script run as scripts/pip-install runs it: the first word is always an assignment for `env`."""
    out = subprocess.run([sys.executable, "scripts/pip_sources.py"], capture_output=True, text=True, cwd=ROOT)
    words = out.stdout.splitlines()
    assert out.returncode == 0 and "=" in words[0] and all(w.startswith("--") for w in words[1:2])
