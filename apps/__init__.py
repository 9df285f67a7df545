"""cvsuite applications; each ``apps/<name>`` has the same shape and plugs into ``shared``."""
