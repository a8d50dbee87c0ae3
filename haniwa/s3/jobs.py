"""The one store every job reads its inputs from and writes its outputs to: :func:`open_job_store`.

Without ``HANIWA_S3_ENDPOINT`` that is the local folder ``HANIWA_S3_ROOT`` (the same folder haniwa's own
S3 surface serves); with it, the real S3-compatible store at that endpoint (:class:`RemoteStore`).
haniwa's S3 surface (``api/s3.py``) always serves the local folder.

::

    store = open_job_store(settings)
    await store.bucket("batch-in")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from haniwa.s3.base import S3Store
from haniwa.s3.remote import RemoteStore
from haniwa.s3.store import FolderStore

if TYPE_CHECKING:
    from haniwa.config import Settings

__all__ = ["open_job_store"]


def open_job_store(settings: Settings) -> S3Store:
    """The store jobs use: the endpoint's when ``s3_endpoint`` is set, else the local folder."""
    if settings.s3_endpoint:
        return RemoteStore.from_settings(settings)
    return FolderStore(settings.s3_folder)
