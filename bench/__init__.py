"""Benchmarks (run each as a script: python bench/<name>.py); a package so mypy names them bench.*."""
