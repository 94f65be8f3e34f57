#!/usr/bin/env python3
"""The studio page's sources, hashed: `make studio` writes the hash beside the build it makes
(python/recvector/studio/static/SOURCE_SHA256), and a test checks that the committed build was made
from the committed sources (so that a change to studio/src cannot ship without its build).

    studio_source_hash.py           print the hash of studio/'s sources
    studio_source_hash.py --write   write it into the built page's directory
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDIO = ROOT / "studio"
STAMP = ROOT / "python" / "recvector" / "studio" / "static" / "SOURCE_SHA256"


def sources() -> list[Path]:
    files = [STUDIO / n for n in ("index.html", "package.json", "package-lock.json", "vite.config.js")]
    files += sorted(p for p in (STUDIO / "src").rglob("*") if p.is_file())
    return files


def source_hash() -> str:
    h = hashlib.sha256()
    for p in sources():
        h.update(p.relative_to(STUDIO).as_posix().encode() + b"\0")
        h.update(p.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


if __name__ == "__main__":
    digest = source_hash()
    if sys.argv[1:] == ["--write"]:
        STAMP.write_text(digest + "\n")
    print(digest)
