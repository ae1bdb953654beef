"""Tests for echo_stream.ads."""
