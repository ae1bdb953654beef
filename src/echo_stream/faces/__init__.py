"""Faces: encoders from the internal events to each endpoint's wire protocol."""
