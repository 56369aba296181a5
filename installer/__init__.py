"""edge-installer's core: plan, validation, profiles, renderers, checks. No Textual here."""

import os as _os

if _os.environ.get("EDGE_INSTALLER_NET_GUARD"):  # the test suite's interlock (installer/checks/netguard.py)
    from installer.checks.netguard import install_from_environment as _guard

    _guard()
