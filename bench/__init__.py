"""Echo Stream benchmark: fake upstream, load generator and side-by-side runner (see README.md)."""
