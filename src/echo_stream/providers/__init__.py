"""Provider adapters: each maps an OpenAI request to one provider's API and its stream to events."""
