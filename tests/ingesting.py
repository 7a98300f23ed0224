"""`ingest()` as a library caller on a fresh installation calls it: with the catalog's real
Authority (empty registry: allowed, audited as unenforced) acting as `unregistered:<user>`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pipeline.catalog.core import Catalog
from pipeline.ingest.run import IngestSettings, RunResult, ingest
from pipeline.people.permissions import open_authority
from pipeline.storage.base import WormStore


def run_ingest(
    sources: Sequence[str | os.PathLike[str]], *, store: WormStore, catalog: Catalog,
    settings: IngestSettings, actor: str | None = None, **kw: Any,
) -> RunResult:
    with open_authority(catalog, store, settings.now) as auth:
        return ingest(sources, store=store, catalog=catalog, settings=settings, auth=auth,
                      actor=auth.acting(actor, os_user="test"), **kw)
