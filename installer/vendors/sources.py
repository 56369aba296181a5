"""The vendor documents every port, domain and remediation comes from, by their titles.

Profiles and the code cite a document as ``"000_d0122341ad91427d.txt#Section"`` (the file the
knowledge was taken from, and its section). Users never see that file name: reports, firewall
requests and screens show the document's title and the section, as the vendor publishes them.
"""

from __future__ import annotations

# The document id (the file name's number) -> the vendor's title for it.
TITLES = {
    "000": "MachineMetrics, Network Requirements",
    "001": "Siemens Industrial Edge, IP protocols and ports",
    "002": "Izuma Device Management, Network configuration",
}


def cite(ref: str) -> str:
    """A citation as a user reads it: 'MachineMetrics, Network Requirements: "CloudLink Blocked"'.

    A reference that names no known document is returned as it is (a plan's own value such as
    "plan: proxy.url" is already in words)."""
    doc, _, section = (ref or "").partition("#")
    title = TITLES.get(doc.split("_", 1)[0]) if doc.endswith(".txt") else None
    if title is None:
        return ref
    return f'{title}: "{section}"' if section else title


def version() -> str:
    """This program's version (the installed distribution's, else the source tree's)."""
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version
        return dist_version("edge-installer")
    except (ImportError, PackageNotFoundError, ValueError):
        return "0.1.0"
