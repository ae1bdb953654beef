"""Session streams: the n8n hand-off (JWT init, a stored event log per session, the callback)."""
