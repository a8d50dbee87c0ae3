"""Schema migrations: ordered functions, each applied once and recorded in ``_migrations``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "migration", "apply"]

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_invocations(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE invocations (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            surface TEXT NOT NULL,
            operation TEXT NOT NULL,
            model_requested TEXT,
            model_id TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms INTEGER,
            first_token_ms INTEGER,
            status TEXT NOT NULL,
            error_code TEXT
        )"""
    )
    db.execute("CREATE INDEX invocations_ts ON invocations (ts)")


@migration
def m002_conversations(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            model_id TEXT NOT NULL,
            system TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms INTEGER,
            created REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX messages_conv ON messages (conversation_id, id)")


@migration
def m003_knowledge(db: sqlite3.Connection) -> None:
    # ``spec`` columns keep the configuration as the client sent it (returned verbatim by Get*); the
    # columns beside it are what the engine itself reads.
    db.execute(
        """CREATE TABLE knowledge_bases (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT,
            status TEXT NOT NULL,
            embedding_model TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            store TEXT NOT NULL,
            spec TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE data_sources (
            id TEXT PRIMARY KEY,
            kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT,
            status TEXT NOT NULL,
            spec TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (kb_id, name)
        )"""
    )
    db.execute(
        """CREATE TABLE ingestion_jobs (
            id TEXT PRIMARY KEY,
            kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
            ds_id TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            description TEXT,
            stats TEXT NOT NULL,
            failures TEXT NOT NULL DEFAULT '[]',
            started REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX ingestion_jobs_ds ON ingestion_jobs (ds_id, started)")
    db.execute(
        """CREATE TABLE kb_documents (
            kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
            ds_id TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            kind TEXT NOT NULL,
            uri TEXT NOT NULL,
            version TEXT,
            hash TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            chunks INTEGER NOT NULL DEFAULT 0,
            job_id TEXT,
            updated REAL NOT NULL,
            PRIMARY KEY (kb_id, id)
        )"""
    )
    db.execute("CREATE INDEX kb_documents_ds ON kb_documents (ds_id, id)")
    db.execute(
        """CREATE TABLE rag_sessions (
            id TEXT PRIMARY KEY,
            turns TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )


@migration
def m004_agents(db: sqlite3.Connection) -> None:
    # As for knowledge bases, ``spec`` keeps the wire configuration as sent. Editing happens on the DRAFT
    # rows; PrepareAgent freezes DRAFT into ``agent_snapshots`` under version "DRAFT" (what the test alias
    # TSTALIASID runs) and an alias without a routing configuration freezes it again as a numbered version.
    db.execute(
        """CREATE TABLE agents (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            spec TEXT NOT NULL,
            next_version INTEGER NOT NULL DEFAULT 1,
            prepared REAL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE agent_action_groups (
            id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (agent_id, name)
        )"""
    )
    db.execute(
        """CREATE TABLE agent_knowledge_bases (
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            kb_id TEXT NOT NULL,
            spec TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (agent_id, kb_id)
        )"""
    )
    db.execute(
        """CREATE TABLE agent_snapshots (
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            version TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (agent_id, version)
        )"""
    )
    db.execute(
        """CREATE TABLE agent_aliases (
            id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            routing TEXT NOT NULL,
            history TEXT NOT NULL DEFAULT '[]',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (agent_id, name)
        )"""
    )
    # One row per (agent, alias, session): the turns so far, the attributes, and a paused orchestration
    # (return of control) waiting for its results. ``updated`` drives the idle-TTL expiry.
    db.execute(
        """CREATE TABLE agent_sessions (
            agent_id TEXT NOT NULL,
            alias_id TEXT NOT NULL,
            id TEXT NOT NULL,
            state TEXT NOT NULL,
            memory_id TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (agent_id, alias_id, id)
        )"""
    )
    db.execute(
        """CREATE TABLE agent_memory (
            agent_id TEXT NOT NULL,
            alias_id TEXT NOT NULL,
            memory_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            summary TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL NOT NULL,
            PRIMARY KEY (agent_id, alias_id, memory_id, session_id)
        )"""
    )


@migration
def m005_playground(db: sqlite3.Connection) -> None:
    # ``params`` keeps the inference settings a client chose for a conversation (JSON object) so the
    # playground resumes it as it was; ``comparisons`` is the playground's compare-mode history.
    db.execute("ALTER TABLE conversations ADD COLUMN params TEXT NOT NULL DEFAULT '{}'")
    db.execute(
        """CREATE TABLE comparisons (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            prompt TEXT NOT NULL,
            system TEXT,
            params TEXT NOT NULL,
            results TEXT NOT NULL
        )"""
    )


@migration
def m006_jobs(db: sqlite3.Connection) -> None:
    # One table for every kind of long work (haniwa/jobs). ``figures``, ``failures`` and ``spec`` are JSON;
    # ``checkpoint`` is the work's own blob. A capability links its resources to its jobs in a table of
    # its own, so this one knows no capability.
    db.execute(
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            spec TEXT NOT NULL,
            done REAL NOT NULL DEFAULT 0,
            total REAL,
            figures TEXT NOT NULL DEFAULT '{}',
            message TEXT,
            failures TEXT NOT NULL DEFAULT '[]',
            eta REAL,
            checkpoint BLOB,
            created REAL NOT NULL,
            started REAL,
            ended REAL,
            updated REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX jobs_kind ON jobs (kind, created)")
    db.execute("CREATE INDEX jobs_state ON jobs (state, created)")


@migration
def m007_ingestion_on_jobs(db: sqlite3.Connection) -> None:
    # Ingestion jobs run on the job engine: their rows move to ``jobs``, and ``kb_ingestion_jobs`` links
    # each to its knowledge base and data source (deleting either deletes the link). ``ingestion_jobs``
    # becomes a view, read by the knowledge service and by anyone inspecting the file, and the one place
    # where the engine's states get Bedrock's ingestion statuses: QUEUED is STARTING, RUNNING is
    # IN_PROGRESS, the others keep their names.
    db.execute(
        """CREATE TABLE kb_ingestion_jobs (
            job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
            kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
            ds_id TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
            description TEXT
        )"""
    )
    db.execute("CREATE INDEX kb_ingestion_jobs_ds ON kb_ingestion_jobs (ds_id)")
    old = db.execute(
        "SELECT id, kb_id, ds_id, status, description, stats, failures, started, updated FROM ingestion_jobs"
    ).fetchall()
    for job_id, kb_id, ds_id, status, description, stats, failures, started, updated in old:
        state = {"STARTING": "QUEUED", "IN_PROGRESS": "RUNNING"}.get(status, status)
        figures = json.loads(stats)
        db.execute(
            "INSERT INTO jobs (id, kind, name, state, spec, done, total, figures, failures, created, started,"
            " ended, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                "ingestion",
                f"ingestion of data source {ds_id}",
                state,
                json.dumps({"kb_id": kb_id, "ds_id": ds_id}),
                figures.get("scanned", 0),
                figures.get("listed"),
                stats,
                failures,
                started,
                started,
                updated if state in ("COMPLETE", "FAILED", "STOPPED") else None,
                updated,
            ),
        )
        db.execute("INSERT INTO kb_ingestion_jobs VALUES (?,?,?,?)", (job_id, kb_id, ds_id, description))
    db.execute("DROP TABLE ingestion_jobs")
    db.execute(
        """CREATE VIEW ingestion_jobs AS
        SELECT j.id AS id, i.kb_id AS kb_id, i.ds_id AS ds_id,
            CASE j.state WHEN 'QUEUED' THEN 'STARTING' WHEN 'RUNNING' THEN 'IN_PROGRESS' ELSE j.state END
                AS status,
            i.description AS description, j.figures AS stats, j.failures AS failures,
            j.created AS started, j.updated AS updated
        FROM kb_ingestion_jobs i JOIN jobs j ON j.id = i.job_id"""
    )


@migration
def m008_data_source_config(db: sqlite3.Connection) -> None:
    # The domain form of a data source (``knowledge.base.DataSourceConfig`` as JSON), which ingestion
    # follows; ``spec`` keeps the wire request. Older rows get theirs at the next start
    # (``KnowledgeService.upgrade``), as only the api layer reads wire specs.
    db.execute("ALTER TABLE data_sources ADD COLUMN config TEXT")


@migration
def m009_guardrails(db: sqlite3.Connection) -> None:
    # ``spec`` keeps the CreateGuardrail/UpdateGuardrail configuration as sent; versions copy it frozen
    db.execute(
        """CREATE TABLE guardrails (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            spec TEXT NOT NULL,
            next_version INTEGER NOT NULL DEFAULT 1,
            client_token TEXT UNIQUE,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE guardrail_versions (
            guardrail_id TEXT NOT NULL REFERENCES guardrails(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            description TEXT,
            spec TEXT NOT NULL,
            client_token TEXT,
            created REAL NOT NULL,
            PRIMARY KEY (guardrail_id, version)
        )"""
    )


@migration
def m010_batch_and_logging(db: sqlite3.Connection) -> None:
    # batch inference jobs: the wire's identity (12-character id, unique name, idempotency token) beside
    # the job engine's row that runs them; ``spec`` keeps the request as sent
    db.execute(
        """CREATE TABLE batch_jobs (
            id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL UNIQUE,
            surface TEXT NOT NULL,
            name TEXT NOT NULL,
            client_token TEXT,
            model_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            input_uri TEXT NOT NULL,
            output_uri TEXT NOT NULL,
            spec TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL,
            UNIQUE (surface, name),
            UNIQUE (surface, client_token)
        )"""
    )
    # files of the OpenAI Files API: pointers to objects in the S3 store
    db.execute(
        """CREATE TABLE openai_files (
            id TEXT PRIMARY KEY,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            bucket TEXT NOT NULL,
            key TEXT NOT NULL,
            created REAL NOT NULL
        )"""
    )
    # PutModelInvocationLoggingConfiguration: one configuration (a single row, id 1)
    db.execute(
        "CREATE TABLE invocation_logging (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL)"
    )


@migration
def m011_evaluation(db: sqlite3.Connection) -> None:
    # One row per evaluation job (its 12-character id is the one in the job ARN; ``job_id`` the job
    # engine's row); ``request`` keeps CreateEvaluationJob's members as sent, ``plan`` the domain form the
    # job runs, ``summary`` the per-metric means and intervals once it completes.
    db.execute(
        """CREATE TABLE evaluation_jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL,
            request TEXT NOT NULL,
            plan TEXT NOT NULL,
            client_token TEXT UNIQUE,
            summary TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    # One row per scored record and source: written as each is scored, so a restarted job skips them.
    db.execute(
        """CREATE TABLE evaluation_records (
            evaluation_id TEXT NOT NULL REFERENCES evaluation_jobs(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            dataset INTEGER NOT NULL,
            record INTEGER NOT NULL,
            key TEXT NOT NULL,
            line TEXT NOT NULL,
            PRIMARY KEY (evaluation_id, source, dataset, record)
        )"""
    )


@migration
def m012_customization(db: sqlite3.Connection) -> None:
    """Model customization: jobs (their work runs on ``jobs``), custom models, provisioned throughput,
    custom-model deployments, model import jobs and imported models. ``data`` is the record's JSON (see
    ``haniwa/customization/service.py`` and ``imports.py``)."""
    tables = (
        "customization_jobs",
        "custom_models",
        "provisioned_models",
        "custom_model_deployments",
        "model_import_jobs",
        "imported_models",
    )
    for table in tables:
        db.execute(
            f"""CREATE TABLE {table} (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                client_token TEXT,
                data TEXT NOT NULL,
                created REAL NOT NULL
            )"""
        )


def apply(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order; returns the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, julianday('now'))", (fn.__name__,))
        applied.append(fn.__name__)
    return applied
