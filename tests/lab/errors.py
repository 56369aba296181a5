"""The lab's one exception."""


class LabError(Exception):
    """The lab cannot do what was asked; the message says why and what to do."""
