"""Object storage: the buckets haniwa serves at its own endpoint (S3 protocol) and its jobs read and write."""
