"""Where Debian's archive is, as the host's apt sources say; and Debian version strings."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"


def host_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The first main-archive URI of the host's apt sources (deb822 or one-line style)."""
    candidates: list[Path] = []
    if (etc_apt / "sources.list").exists():
        candidates.append(etc_apt / "sources.list")
    candidates += sorted((etc_apt / "sources.list.d").glob("*.sources"))
    candidates += sorted((etc_apt / "sources.list.d").glob("*.list"))
    for path in candidates:
        for uri in _uris(path.read_text(errors="replace"), deb822=path.suffix == ".sources"):
            if "security" not in uri and uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _uris(text: str, deb822: bool) -> list[str]:
    found: list[str] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Enabled:\s*no", stanza, re.MULTILINE | re.IGNORECASE):
                continue
            match = re.search(r"^URIs:\s*(.+)$", stanza, re.MULTILINE)
            if match:
                found += match.group(1).split()
        return found
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "deb":
            words = [w for w in words[1:] if not w.startswith("[")]
            if words:
                found.append(words[0])
    return found
