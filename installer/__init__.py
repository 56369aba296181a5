"""edge-installer's core: plan, validation, profiles, renderers, checks. No Textual here."""
