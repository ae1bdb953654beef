"""Text to speech: the TTS interface, its providers, and cutting answers into segments."""
