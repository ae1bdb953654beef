"""Operations: the per-request record, logs, metrics, limits, usage, readiness and drain."""
