"""mediasyncd: pull generated media from remote GPU containers into a local library."""

__version__ = "0.1.0"
