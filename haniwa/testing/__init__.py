"""Test helpers shipped for plugin authors: a real server in a thread, fixtures' building blocks."""
