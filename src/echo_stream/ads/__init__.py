"""Sponsored blocks: inventory, targeting, the sensitive-topic guard and rendering."""
