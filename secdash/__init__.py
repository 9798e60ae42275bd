"""secdash: a security-event dashboard for Linux servers (pure core; UI lives in secdash.ui)."""

__version__ = "0.1.0"
