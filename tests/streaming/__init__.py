"""Tests for echo_stream.streaming."""
