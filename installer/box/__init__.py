"""The box: its interfaces, its network stack, its radio, its identity, and the one seam (System)
through which files and commands reach it."""
