"""The web chat page and the ad dashboard: packaged static files (see `static/`)."""
