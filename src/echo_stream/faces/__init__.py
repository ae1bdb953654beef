"""Wire formats of the faces other than OpenAI's: one encoder module per protocol."""
