"""Model invocation logging: the configuration PutModelInvocationLoggingConfiguration sets, and the
log records written to S3 for each runtime call (the SQLite log is ``store/usage.py``)."""
