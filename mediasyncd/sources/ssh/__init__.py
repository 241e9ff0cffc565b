"""The SSH transport: all of mediasyncd's asyncssh code lives in this package."""
