"""Faces: encoders from the pipeline's internal events to each endpoint's wire protocol."""
