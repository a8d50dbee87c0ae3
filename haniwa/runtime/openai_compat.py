"""OpenAI-compatible backend (in progress)."""
