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


def version_key(version: str) -> tuple[object, ...]:
    """A sort key that orders Debian version strings as dpkg does (epoch, upstream version,
    revision; `~` before anything, even the end): 7.2.13-1 < 7.3~rc7-1~exp1 < 7.3-1."""
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return (int(epoch or 0), _part_key(upstream), _part_key(revision))


def _part_key(part: str) -> tuple[object, ...]:
    """dpkg's comparison of one part: alternating runs of non-digits (compared character by
    character, `~` lowest, then the end, then letters, then the rest) and of digits."""
    key: list[object] = []
    for text, digits in re.findall(r"(\D*)(\d*)", part):
        if not text and not digits:
            continue
        key.append(tuple(_char_order(c) for c in text) + (0,))
        key.append(int(digits or 0))
    return (*key, (0,), 0)  # the end: after `~`, before anything else


def _char_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256
