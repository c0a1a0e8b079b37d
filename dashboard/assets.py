"""Installs the dashboard's third-party JavaScript (htmx) from the npm registry.

The setup runs this (``python -m dashboard.assets``), so nothing third-party is copied
into the repository by hand: the tarball of a pinned version is downloaded, checked
against the registry's published SHA-512 integrity, and its one file unpacked into
``static/vendor/``. The dashboard still works for reading without it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

HTMX_VERSION = "2.0.8"
HTMX_TARBALL = f"https://registry.npmjs.org/htmx.org/-/htmx.org-{HTMX_VERSION}.tgz"
# As the npm registry publishes it: `npm view htmx.org@2.0.8 dist.integrity`.
HTMX_INTEGRITY = (
    "sha512-fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kF"
    "isLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q=="
)
HTMX_MEMBER = "package/dist/htmx.min.js"
VENDOR_DIR = Path(__file__).resolve().parent.parent / "static" / "vendor"
HTMX_FILE = VENDOR_DIR / "htmx.min.js"
STAMP = VENDOR_DIR / "htmx.version"


class AssetError(RuntimeError):
    pass


def install_htmx(tarball_url: str = HTMX_TARBALL) -> bool:
    """Download and unpack htmx unless this version is there; True when it installed."""
    if HTMX_FILE.exists() and STAMP.exists() and STAMP.read_text().strip() == HTMX_VERSION:
        return False
    with urllib.request.urlopen(tarball_url, timeout=60) as response:
        tarball = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != HTMX_INTEGRITY:
        raise AssetError(f"{tarball_url} does not match its published integrity; not installed")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(HTMX_MEMBER)
        if member is None:
            raise AssetError(f"{HTMX_MEMBER} is missing from {tarball_url}")
        script = member.read()
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    HTMX_FILE.write_bytes(script)
    STAMP.write_text(HTMX_VERSION + "\n")
    return True


def main() -> None:
    try:
        installed = install_htmx()
    except (OSError, AssetError) as exc:
        sys.exit(f"could not install htmx {HTMX_VERSION}: {exc}")
    print(
        f"htmx {HTMX_VERSION} {'installed' if installed else 'already installed'} in {VENDOR_DIR}"
    )


if __name__ == "__main__":
    main()
