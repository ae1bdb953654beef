"""Wire encoders of the faces that are not the OpenAI API: internal events -> each protocol."""
