"""Knowledge-base stores: the embedded default (``local``) and PostgreSQL + pgvector."""
