"""Tests for echo_stream.providers."""
