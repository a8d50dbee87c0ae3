"""The HTTP surfaces; the only package that knows HTTP and wire names."""
