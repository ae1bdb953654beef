"""The streaming pipeline: provider events -> ad filter -> OpenAI chunks or a collected answer."""
