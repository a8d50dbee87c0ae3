"""Knowledge bases: ingestion, chunking, indexing and retrieval."""
