"""State: SQLite (WAL) under HANIWA_HOME."""
