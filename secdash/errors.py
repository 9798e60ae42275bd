"""Errors that the CLI and the UI show as one clear line (never a traceback)."""


class SecdashError(Exception):
    """Base class: the message is meant for the person running secdash."""


class SourceError(SecdashError):
    """A log source is missing, unreadable or not text."""


class StoreBusyError(SecdashError):
    """The event store is held by another process for longer than we are willing to wait."""
