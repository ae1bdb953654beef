"""Echo Stream: an OpenAI-compatible streaming gateway with sponsored blocks."""

__version__ = "0.1.0"
