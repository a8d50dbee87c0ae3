"""``bedrock-agent`` knowledge-base operations: knowledge bases, data sources, ingestion jobs and
direct document ingestion. Wire shapes ↔ ``haniwa.knowledge.service`` objects, nothing more."""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
from collections.abc import Mapping
from typing import Any

from haniwa.api.context import Call
from haniwa.api.pagination import paginate
from haniwa.config import Settings
from haniwa.errors import NotFoundError, ValidationError
from haniwa.knowledge.base import (
    ChunkingStrategy,
    DataSourceConfig,
    FixedSize,
    Hierarchical,
    NoChunking,
    Semantic,
)
from haniwa.knowledge.service import (
    LISTED,
    STAT_KEYS,
    DataSource,
    DirectDocument,
    DocumentRecord,
    IngestionJob,
    KnowledgeBase,
    document_id,
)
from haniwa.knowledge.sources import SourceDocument, parse_bucket_arn, s3_source

__all__ = ["OPERATIONS", "data_source_config", "chunking_strategy", "kb_arn"]

# Storage types whose vectors haniwa keeps itself: all map to the configured default store, except
# RDS (Aurora PostgreSQL + pgvector), which maps to pgvector when HANIWA_PG_URL is set.
_STAT_WIRE = {
    "scanned": "numberOfDocumentsScanned",
    "metadata_scanned": "numberOfMetadataDocumentsScanned",
    "new": "numberOfNewDocumentsIndexed",
    "modified": "numberOfModifiedDocumentsIndexed",
    "metadata_modified": "numberOfMetadataDocumentsModified",
    "deleted": "numberOfDocumentsDeleted",
    "failed": "numberOfDocumentsFailed",
}
_MIME_SUFFIX = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


def _ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def kb_arn(call: Call, kb_id: str) -> str:
    return f"arn:aws:bedrock:{call.platform.settings.region}:000000000000:knowledge-base/{kb_id}"


def chunking_strategy(vic: Mapping[str, Any] | None) -> ChunkingStrategy:
    """``vectorIngestionConfiguration.chunkingConfiguration`` → a strategy (Bedrock's default when absent:
    fixed size, 300 tokens, 20% overlap)."""
    cfg = (vic or {}).get("chunkingConfiguration")
    if not cfg:
        return FixedSize()
    kind = cfg["chunkingStrategy"]
    if kind == "FIXED_SIZE":
        c = cfg.get("fixedSizeChunkingConfiguration")
        if not c:
            raise ValidationError("FIXED_SIZE chunking needs fixedSizeChunkingConfiguration")
        if c["maxTokens"] < 1 or not 1 <= c["overlapPercentage"] <= 99:
            raise ValidationError("maxTokens must be ≥ 1 and overlapPercentage between 1 and 99")
        return FixedSize(c["maxTokens"], c["overlapPercentage"])
    if kind == "HIERARCHICAL":
        c = cfg.get("hierarchicalChunkingConfiguration")
        if not c or len(c["levelConfigurations"]) != 2:
            raise ValidationError("HIERARCHICAL chunking needs two levelConfigurations (parent, child)")
        parent, child = (lvl["maxTokens"] for lvl in c["levelConfigurations"])
        if child > parent:
            raise ValidationError("the child level's maxTokens must not exceed the parent level's")
        return Hierarchical(parent, child, c["overlapTokens"])
    if kind == "SEMANTIC":
        c = cfg.get("semanticChunkingConfiguration")
        if not c:
            raise ValidationError("SEMANTIC chunking needs semanticChunkingConfiguration")
        return Semantic(c["maxTokens"], c["bufferSize"], c["breakpointPercentileThreshold"])
    return NoChunking()


def data_source_config(settings: Settings, spec: Mapping[str, Any]) -> DataSourceConfig:
    """A data source's wire spec (``dataSourceConfiguration``, ``vectorIngestionConfiguration``) → the
    domain config ingestion follows. Raises ``ValidationError`` for what haniwa cannot serve: another
    source type, a bad bucket ARN, a prefix that leaves the bucket, an unknown chunking."""
    cfg = spec["dataSourceConfiguration"]
    chunking = chunking_strategy(spec.get("vectorIngestionConfiguration"))
    if cfg["type"] == "CUSTOM":
        return DataSourceConfig(None, (), chunking)
    if cfg["type"] != "S3":
        raise ValidationError(
            f"data source type {cfg['type']} needs a network service; haniwa serves S3 and CUSTOM"
        )
    s3 = cfg.get("s3Configuration")
    if not s3:
        raise ValidationError("an S3 data source needs s3Configuration")
    config = DataSourceConfig(s3["bucketArn"], tuple(s3.get("inclusionPrefixes") or ()), chunking)
    s3_source(settings, s3["bucketArn"], config.prefixes)  # validates the ARN and the prefixes now
    return config


# -- knowledge bases ---------------------------------------------------------------------------------
def _kb_wire(call: Call, kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "knowledgeBaseId": kb.id,
        "name": kb.name,
        "knowledgeBaseArn": kb_arn(call, kb.id),
        "description": kb.description,
        "roleArn": kb.spec.get("roleArn", ""),
        "knowledgeBaseConfiguration": kb.spec["knowledgeBaseConfiguration"],
        "storageConfiguration": kb.spec.get("storageConfiguration"),
        "status": kb.status,
        "createdAt": _ts(kb.created),
        "updatedAt": _ts(kb.updated),
    }


def _store_for(call: Call, storage: Mapping[str, Any] | None) -> str:
    settings = call.platform.settings
    if storage and storage.get("type") == "RDS" and settings.pg_url is not None:
        return "pgvector"
    return settings.vector_store


async def _embedding(call: Call, kbc: Mapping[str, Any]) -> tuple[str, int]:
    if kbc["type"] != "VECTOR":
        raise ValidationError(f"knowledge base type {kbc['type']} is not served; use VECTOR")
    vkb = kbc.get("vectorKnowledgeBaseConfiguration")
    if not vkb:
        raise ValidationError("a VECTOR knowledge base needs vectorKnowledgeBaseConfiguration")
    model = vkb["embeddingModelArn"]
    registry = call.platform.registry
    res, embedder = await registry.embedder(model)
    wanted = (
        vkb.get("embeddingModelConfiguration", {})
        .get("bedrockEmbeddingModelConfiguration", {})
        .get("dimensions")
    )
    allowed = res.alias.allowed_dimensions if res.alias else ()
    if wanted is not None and allowed and wanted not in allowed:
        raise ValidationError(f"dimensions must be one of {list(allowed)} for {model}")
    return model, embedder.dimensions


async def create_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    model, dims = await _embedding(call, p["knowledgeBaseConfiguration"])
    spec: dict[str, Any] = {
        k: p[k] for k in ("roleArn", "knowledgeBaseConfiguration", "storageConfiguration") if k in p
    }
    kb = await call.platform.knowledge.create_kb(
        name=p["name"],
        description=p.get("description"),
        embedding_model=model,
        dimensions=dims,
        store=_store_for(call, p.get("storageConfiguration")),
        spec=spec,
    )
    return {"knowledgeBase": _kb_wire(call, kb)}


async def get_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return {"knowledgeBase": _kb_wire(call, await call.platform.knowledge.get_kb(p["knowledgeBaseId"]))}


async def list_knowledge_bases(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    page = paginate(call, p, await call.platform.knowledge.list_kbs(), key=lambda kb: kb.id)
    items = [
        {
            "knowledgeBaseId": kb.id,
            "name": kb.name,
            "description": kb.description,
            "status": kb.status,
            "updatedAt": _ts(kb.updated),
        }
        for kb in page.items
    ]
    return page.wire("knowledgeBaseSummaries", items)


async def update_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    kb = await svc.get_kb(p["knowledgeBaseId"])
    new_kbc = p["knowledgeBaseConfiguration"]
    old_model = kb.spec["knowledgeBaseConfiguration"].get("vectorKnowledgeBaseConfiguration", {})
    new_model = new_kbc.get("vectorKnowledgeBaseConfiguration", {})
    if old_model.get("embeddingModelArn") != new_model.get("embeddingModelArn"):
        raise ValidationError("the embedding model of a knowledge base cannot be changed; create a new one")
    spec = {**kb.spec, "roleArn": p["roleArn"], "knowledgeBaseConfiguration": new_kbc}
    if "storageConfiguration" in p:
        spec["storageConfiguration"] = p["storageConfiguration"]
    kb = await svc.update_kb(kb.id, name=p["name"], description=p.get("description"), spec=spec)
    return {"knowledgeBase": _kb_wire(call, kb)}


async def delete_knowledge_base(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    kb = await call.platform.knowledge.delete_kb(p["knowledgeBaseId"])
    return {"knowledgeBaseId": kb.id, "status": kb.status}


# -- data sources ------------------------------------------------------------------------------------
def _ds_wire(ds: DataSource) -> dict[str, Any]:
    return {
        "knowledgeBaseId": ds.kb_id,
        "dataSourceId": ds.id,
        "name": ds.name,
        "status": ds.status,
        "description": ds.description,
        "dataSourceConfiguration": ds.spec["dataSourceConfiguration"],
        "vectorIngestionConfiguration": ds.spec.get("vectorIngestionConfiguration"),
        "dataDeletionPolicy": ds.spec.get("dataDeletionPolicy", "DELETE"),
        "createdAt": _ts(ds.created),
        "updatedAt": _ts(ds.updated),
    }


def _ds_spec(call: Call, p: Mapping[str, Any]) -> dict[str, Any]:
    """The request's data-source members: the wire spec to keep, and its domain ``config`` (validated
    now, not at the first ingestion)."""
    spec = {
        k: p[k]
        for k in ("dataSourceConfiguration", "vectorIngestionConfiguration", "dataDeletionPolicy")
        if k in p
    }
    return {"spec": spec, "config": data_source_config(call.platform.settings, spec)}


async def create_data_source(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    ds = await call.platform.knowledge.create_ds(
        p["knowledgeBaseId"], name=p["name"], description=p.get("description"), **_ds_spec(call, p)
    )
    return {"dataSource": _ds_wire(ds)}


async def get_data_source(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataSource": _ds_wire(await call.platform.knowledge.get_ds(p["knowledgeBaseId"], p["dataSourceId"]))
    }


async def list_data_sources(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    sources = await call.platform.knowledge.list_ds(p["knowledgeBaseId"])
    page = paginate(call, p, sources, key=lambda ds: ds.id)
    items = [
        {
            "knowledgeBaseId": ds.kb_id,
            "dataSourceId": ds.id,
            "name": ds.name,
            "status": ds.status,
            "description": ds.description,
            "updatedAt": _ts(ds.updated),
        }
        for ds in page.items
    ]
    return page.wire("dataSourceSummaries", items)


async def update_data_source(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    ds = await svc.update_ds(
        p["knowledgeBaseId"],
        p["dataSourceId"],
        name=p["name"],
        description=p.get("description"),
        **_ds_spec(call, p),
    )
    return {"dataSource": _ds_wire(ds)}


async def delete_data_source(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    ds = await svc.get_ds(p["knowledgeBaseId"], p["dataSourceId"])
    ds = await svc.delete_ds(ds.kb_id, ds.id, retain=ds.spec.get("dataDeletionPolicy") == "RETAIN")
    return {"knowledgeBaseId": ds.kb_id, "dataSourceId": ds.id, "status": ds.status}


# -- ingestion jobs ----------------------------------------------------------------------------------
def _job_wire(job: IngestionJob) -> dict[str, Any]:
    return {
        "knowledgeBaseId": job.kb_id,
        "dataSourceId": job.ds_id,
        "ingestionJobId": job.id,
        "description": job.description,
        "status": job.status,
        "statistics": {_STAT_WIRE[k]: int(job.stats.get(k, 0)) for k in STAT_KEYS},
        "failureReasons": job.failures or None,
        "startedAt": _ts(job.started),
        "updatedAt": _ts(job.updated),
        # haniwa extension (SDKs skip unknown members): Bedrock's statistics have no total, so a
        # progress bar reads scanned / listed; documentsListed is absent until the listing is done
        "progress": {
            "documentsListed": job.stats.get(LISTED),
            "documentsScanned": int(job.stats.get("scanned", 0)),
        },
    }


async def start_ingestion_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    job = await call.platform.knowledge.start_job(
        p["knowledgeBaseId"], p["dataSourceId"], p.get("description")
    )
    return {"ingestionJob": _job_wire(job)}


async def get_ingestion_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    return {
        "ingestionJob": _job_wire(
            await svc.get_job(p["knowledgeBaseId"], p["dataSourceId"], p["ingestionJobId"])
        )
    }


async def stop_ingestion_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    return {
        "ingestionJob": _job_wire(
            await svc.stop_job(p["knowledgeBaseId"], p["dataSourceId"], p["ingestionJobId"])
        )
    }


async def list_ingestion_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    jobs = [
        _job_wire(j) for j in await call.platform.knowledge.list_jobs(p["knowledgeBaseId"], p["dataSourceId"])
    ]
    for f in p.get("filters") or []:
        if f["attribute"] == "STATUS":
            jobs = [j for j in jobs if j["status"] in f["values"]]
    sort = p.get("sortBy")
    if sort:
        key = {"STATUS": "status", "STARTED_AT": "startedAt"}[sort["attribute"]]
        jobs.sort(key=lambda j: j[key], reverse=sort["order"] == "DESCENDING")
    page = paginate(call, p, jobs, key=lambda j: str(j["ingestionJobId"]))
    for j in page.items:
        j.pop("failureReasons", None)
    return page.wire("ingestionJobSummaries", page.items)


# -- documents ---------------------------------------------------------------------------------------
def _doc_wire(d: DocumentRecord) -> dict[str, Any]:
    ident: dict[str, Any] = (
        {"dataSourceType": "S3", "s3": {"uri": d.uri}}
        if d.kind == "S3"
        else {"dataSourceType": "CUSTOM", "custom": {"id": d.id}}
    )
    return {
        "knowledgeBaseId": d.kb_id,
        "dataSourceId": d.ds_id,
        "status": d.status,
        "identifier": ident,
        "statusReason": d.reason,
        "updatedAt": _ts(d.updated),
    }


def _attr_value(v: Mapping[str, Any]) -> Any:
    kind = v["type"]
    key = {"STRING": "stringValue", "NUMBER": "numberValue", "BOOLEAN": "booleanValue"}.get(
        kind, "stringListValue"
    )
    if key not in v:
        raise ValidationError(f"a {kind} metadata attribute needs {key}")
    return v[key]


def _direct(ds: DataSource, doc: Mapping[str, Any]) -> DirectDocument:
    content = doc["content"]
    metadata: dict[str, Any] = {}
    meta = doc.get("metadata")
    if meta:
        if meta["type"] != "IN_LINE_ATTRIBUTE":
            raise ValidationError(
                "document metadata must be IN_LINE_ATTRIBUTE (sidecars come with S3 objects)"
            )
        metadata = {a["key"]: _attr_value(a["value"]) for a in meta.get("inlineAttributes") or []}
    if content["dataSourceType"] == "CUSTOM":
        custom = content.get("custom")
        if not custom:
            raise ValidationError("a CUSTOM document needs content.custom")
        doc_id = custom["customDocumentIdentifier"]["id"]
        if custom["sourceType"] == "S3_LOCATION":
            uri = custom.get("s3Location", {}).get("uri")
            if not uri:
                raise ValidationError("an S3_LOCATION document needs s3Location.uri")
            return DirectDocument(
                doc_id, "CUSTOM", doc_id, uri.rsplit("/", 1)[-1], s3_uri=uri, metadata=metadata
            )
        inline = custom.get("inlineContent")
        if not inline:
            raise ValidationError("an IN_LINE document needs inlineContent")
        member = "textContent" if inline["type"] == "TEXT" else "byteContent"
        if member not in inline:
            raise ValidationError(f"an inline document of type {inline['type']} needs inlineContent.{member}")
        if inline["type"] == "TEXT":
            return DirectDocument(
                doc_id,
                "CUSTOM",
                doc_id,
                f"{doc_id}.txt",
                inline["textContent"]["data"].encode(),
                metadata=metadata,
            )
        byte = inline["byteContent"]
        mime = byte["mimeType"].split(";")[0].strip().lower()
        suffix = _MIME_SUFFIX.get(mime) or mimetypes.guess_extension(mime) or ".txt"
        data = byte["data"]
        try:
            raw = data if isinstance(data, bytes) else base64.b64decode(data, validate=True)
        except ValueError as exc:
            raise ValidationError("byteContent.data must be base64-encoded") from exc
        # an id that already names a file of this type ("manual.pdf") is kept as the file name
        name = doc_id if doc_id.lower().endswith(suffix) else f"{doc_id}{suffix}"
        return DirectDocument(doc_id, "CUSTOM", doc_id, name, raw, metadata=metadata)
    uri = content.get("s3", {}).get("s3Location", {}).get("uri")
    if not uri:
        raise ValidationError("an S3 document needs content.s3.s3Location.uri")
    return DirectDocument(
        document_id(ds.id, uri), "S3", uri, uri.rsplit("/", 1)[-1], s3_uri=uri, metadata=metadata
    )


def _s3_reader(settings: Settings) -> Any:
    async def read(uri: str) -> tuple[bytes, dict[str, Any]]:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise ValidationError(f"{uri!r} is not an s3://bucket/key URI")
        bucket, key = uri[5:].split("/", 1)
        source = s3_source(settings, f"arn:aws:s3:::{parse_bucket_arn(f'arn:aws:s3:::{bucket}')}", [key])
        for item in await source.list():
            if item.key == key:
                doc: SourceDocument = await source.read(item)
                return doc.data, doc.metadata
        raise NotFoundError(f"{uri} does not exist")

    return read


async def ingest_knowledge_base_documents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    ds = await svc.get_ds(p["knowledgeBaseId"], p["dataSourceId"])
    docs = [_direct(ds, d) for d in p["documents"]]
    kind = "CUSTOM" if ds.config.bucket_arn is None else "S3"
    bucket = None if ds.config.bucket_arn is None else parse_bucket_arn(ds.config.bucket_arn)
    for d in docs:
        if (d.kind == "CUSTOM") != (kind == "CUSTOM"):
            raise ValidationError(f"data source {ds.id} is {kind}: it cannot take {d.kind} documents")
        # an S3 data source holds the objects of its own bucket; another bucket is another source
        if bucket is not None and d.kind == "S3" and not (d.s3_uri or "").startswith(f"s3://{bucket}/"):
            raise ValidationError(
                f"{d.s3_uri} is not in bucket {bucket!r} of data source {ds.id}; documents of an S3 data"
                " source must come from its bucket"
            )
    records = await svc.ingest_documents(ds.kb_id, ds.id, docs, _s3_reader(call.platform.settings))
    return {"documentDetails": [_doc_wire(r) for r in records]}


def _ids(ds: DataSource, idents: list[Mapping[str, Any]]) -> list[str]:
    out = []
    for ident in idents:
        # the shape makes custom and s3 optional; the dataSourceType says which one must be there
        if ident["dataSourceType"] == "CUSTOM":
            if "custom" not in ident:
                raise ValidationError("a CUSTOM document identifier needs custom.id")
            out.append(ident["custom"]["id"])
        else:
            if "s3" not in ident:
                raise ValidationError("an S3 document identifier needs s3.uri")
            out.append(document_id(ds.id, ident["s3"]["uri"]))
    return out


async def get_knowledge_base_documents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    ds = await svc.get_ds(p["knowledgeBaseId"], p["dataSourceId"])
    out = []
    for doc_id, ident in zip(_ids(ds, p["documentIdentifiers"]), p["documentIdentifiers"], strict=True):
        try:
            out.append(_doc_wire(await svc.get_document(ds.kb_id, ds.id, doc_id)))
        except NotFoundError:
            out.append(
                {
                    "knowledgeBaseId": ds.kb_id,
                    "dataSourceId": ds.id,
                    "status": "NOT_FOUND",
                    "identifier": ident,
                }
            )
    return {"documentDetails": out}


async def list_knowledge_base_documents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    docs = await call.platform.knowledge.list_documents(p["knowledgeBaseId"], p["dataSourceId"])
    page = paginate(call, p, docs, key=lambda d: d.id)
    return page.wire("documentDetails", [_doc_wire(d) for d in page.items])


async def delete_knowledge_base_documents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    svc = call.platform.knowledge
    ds = await svc.get_ds(p["knowledgeBaseId"], p["dataSourceId"])
    records = await svc.delete_documents(ds.kb_id, ds.id, _ids(ds, p["documentIdentifiers"]))
    return {"documentDetails": [_doc_wire(r) for r in records]}


OPERATIONS = {
    ("bedrock-agent", "CreateKnowledgeBase"): create_knowledge_base,
    ("bedrock-agent", "GetKnowledgeBase"): get_knowledge_base,
    ("bedrock-agent", "ListKnowledgeBases"): list_knowledge_bases,
    ("bedrock-agent", "UpdateKnowledgeBase"): update_knowledge_base,
    ("bedrock-agent", "DeleteKnowledgeBase"): delete_knowledge_base,
    ("bedrock-agent", "CreateDataSource"): create_data_source,
    ("bedrock-agent", "GetDataSource"): get_data_source,
    ("bedrock-agent", "ListDataSources"): list_data_sources,
    ("bedrock-agent", "UpdateDataSource"): update_data_source,
    ("bedrock-agent", "DeleteDataSource"): delete_data_source,
    ("bedrock-agent", "StartIngestionJob"): start_ingestion_job,
    ("bedrock-agent", "GetIngestionJob"): get_ingestion_job,
    ("bedrock-agent", "StopIngestionJob"): stop_ingestion_job,
    ("bedrock-agent", "ListIngestionJobs"): list_ingestion_jobs,
    ("bedrock-agent", "IngestKnowledgeBaseDocuments"): ingest_knowledge_base_documents,
    ("bedrock-agent", "GetKnowledgeBaseDocuments"): get_knowledge_base_documents,
    ("bedrock-agent", "ListKnowledgeBaseDocuments"): list_knowledge_base_documents,
    ("bedrock-agent", "DeleteKnowledgeBaseDocuments"): delete_knowledge_base_documents,
}
