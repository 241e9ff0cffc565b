"""`mediasyncd demo`: an embedded SSH server serving a live, generated Forge/ComfyUI outputs tree."""
