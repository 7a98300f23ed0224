"""The catalog under an S3 prefix: Parquet parts made visible by one manifest object.

Layout under `s3://bucket/prefix/`:
    parts/<batch_id>/<table>.parquet            written first; invisible on their own
    commits/date=YYYY-MM-DD/<batch_id>.json     the commit: ONE small object naming the parts
    compactions/<id>.json                       a compaction (`compact.py`): the merged parts
                                                under parts/<id>/, the parts it carries and
                                                the manifests it covers

S3 has no rename, so a batch is committed the way table formats (Delta, Iceberg) do it:
every part is uploaded first, then one manifest lists them with their row counts, sizes,
SHA-256 and VersionIds. A PUT is atomic, so a batch is visible whole or not at all;
readers take only parts named by a manifest, and a writer that dies between its parts
and its manifest leaves parts nobody reads. The bucket's default Object Lock retention
locks parts and manifests alike: the catalog is append-only in fact, not only by
convention, and dead parts cannot be removed before the retention ends (a lifecycle rule
may then expire `parts/` objects no manifest names).

Compaction. Readers take the latest compaction (by name: ids sort by time), its parts
and carried parts, and every batch manifest it does not cover; a batch committed while a
compaction ran is outside its `covers` and so still read. An older release does not look
under `compactions/` and reads every batch as before.

Many batches. Manifests never change (batch ids are unique, objects locked), so each is
fetched once and cached in the local cache directory; a reader then pays one LIST of
`commits/` per 1,000 batches to learn what is committed now. The list of parts goes into
the views as explicit URLs (never a glob, which could see uncommitted parts), grouped by
the Arrow schema they were written with: parts of one schema are read by one
`read_parquet([...])` (DuckDB binds the schema from the first file instead of fetching
every footer, as `union_by_name` would), and groups of different schemas (a column added
in a later release) are joined with `UNION ALL BY NAME`. Tables no batch wrote to read
an empty Parquet file of their current schema kept in the cache directory, so every view
exists from the start and no empty parts are uploaded. Batches of 16 recordings (the
ingest default) keep the file count to a few hundred for thousands of recordings.

Why DuckDB httpfs, not pyarrow's S3 filesystem into Arrow: a 10-minute recording has
about 46,000 packet rows, so thousands of recordings make a packets table of 10^8 rows.
httpfs reads with ranged GETs only the columns and row groups a query needs, streams
instead of materialising whole tables, and keeps HTTP and Parquet metadata caches for as
long as the connection lives (`Catalog.query` keeps one). Reading into Arrow would load
every selected table into memory before the first filter. The same views also work in the
analyst's `catalog.duckdb`. The extension is the signed `httpfs.duckdb_extension` of the
PyPI package `duckdb-extension-httpfs` (same version as duckdb), LOADed by path with
extension auto-install and auto-load off: nothing is fetched from the network. Writes and
listings go through `pipeline.storage.s3.store.S3Objects` (boto3, explicit SHA-256 on every PUT,
which AWS requires on buckets with a default retention).

Tamper evidence. Each manifest, and the SHA-256 of its bytes, goes into the audit chain
before its PUT (`commits.py`); `custody verify` reads every manifest from S3 again (not the
cache), checks it against its audit record, each part against its manifest, and names
every object under `parts/` that no recorded commit names. A new version put over a part
or a manifest (Object Lock keeps the old one, but readers see the new) is named too.

Credentials. DuckDB gets the region, endpoint, addressing style and credentials that
boto3 resolved for the store's client (keys, a profile, SSO, an instance or container
role), renewed on a kept connection when boto3 refreshes them: one resolution, so the
catalog reads with the same identity the store writes with.

The local cache directory (`Catalog.open(..., cache_dir=...)`) holds:
    catalog.duckdb      views over the S3 parts committed when it was last refreshed; open
                        it in DuckDB after running connect.sql with your credentials
    connect.sql         LOAD of the httpfs extension and a CREATE SECRET template
    ingest.lock         serialises ingests on this machine
    manifests/          cached commit manifests (immutable)
    schema/             an empty Parquet file of each table's current schema
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.catalog.commits import COMPACTION, Commit, Manifest, PartEntry, Recorder
from pipeline.catalog.parts import (
    VIEWED,
    Current,
    Staged,
    folded_names,
    new_stage,
    schema_id,
    write_parquet,
)
from pipeline.errors import CatalogError
from pipeline.storage.base import ObjectNotFound, StoreError
from pipeline.storage.s3.client import S3Access
from pipeline.storage.s3.store import S3Config, S3Objects
from schemas.records import UNFOLDED, arrow_schema, table_name

COMMITS = "commits/"
COMPACTIONS = "compactions/"
PARTS = "parts/"
_UPLOAD_THREADS = 8

__all__ = ["Manifest", "PartEntry", "S3Parts", "httpfs_extension_path", "manifest_name"]


def httpfs_extension_path() -> Path:
    """The httpfs extension file shipped by the PyPI package `duckdb-extension-httpfs`."""
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    if spec is None or spec.origin is None:
        raise CatalogError(
            "an S3 catalog needs the DuckDB httpfs extension: pip install "
            f"duckdb-extension-httpfs=={duckdb.__version__}"
        )
    base = Path(spec.origin).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.exists():
        have = sorted(p.name for p in base.glob("v*")) if base.exists() else []
        raise CatalogError(
            f"duckdb-extension-httpfs has no extension for duckdb {duckdb.__version__} "
            f"(it has {', '.join(have) or 'none'}); install the matching version"
        )
    return path


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def manifest_name(batch_id: str, day: dt.date) -> str:
    return f"{COMMITS}date={day.isoformat()}/{batch_id}.json"


class S3Parts:
    """The parts of a catalog under an S3 prefix, committed by manifest (see module doc)."""

    reuse_connection = True
    provenance = False  # part URLs have no hive keys: rows have no `date` and `batch`

    def __init__(
        self, bucket: str, prefix: str, *, config: S3Config, cache_dir: Path
    ) -> None:
        self.objects = S3Objects(bucket, prefix, config=config)
        self.config = config
        self.location = self.objects.uri
        self.root = cache_dir.resolve()
        self._manifests = self.root / "manifests"
        self._parsed: dict[str, Manifest] = {}  # immutable objects, parsed once
        try:
            self._manifests.mkdir(parents=True, exist_ok=True)
            (self.root / "schema").mkdir(exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"{self.root}: cannot use as the cache of {self.location}: {exc.strerror}"
            ) from exc
        self._access = self._resolve_access()
        self._secret_sql = _secret_sql(self._access, self.location)
        self._empty = {name: self._schema_file(arrow_schema(cls)) for name, cls in VIEWED}
        self._write_connect_sql()

    @classmethod
    def from_uri(cls, uri: str, *, env: Mapping[str, str], cache_dir: Path) -> S3Parts:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise CatalogError(f"not an S3 catalog location (s3://bucket/prefix): {uri!r}")
        try:
            config = S3Config.from_env(env)
        except StoreError as exc:
            raise CatalogError(f"{uri}: {exc}") from exc
        return cls(parts.netloc, parts.path, config=config, cache_dir=cache_dir)

    def _resolve_access(self) -> S3Access:
        """Region, endpoint, addressing and credentials as boto3 resolved them (keys, a
        profile, SSO, an instance or container role): DuckDB reads with the same identity
        as the store's client, from one resolution (see README, Storage)."""
        try:
            return self.objects.access()
        except StoreError as exc:
            raise CatalogError(
                f"{self.location}: reading an S3 catalog needs AWS credentials "
                f"(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): {exc}"
            ) from exc

    # --- local cache -------------------------------------------------------------------
    def _atomic_write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def _schema_file(self, schema: pa.Schema) -> str:
        path = self.root / "schema" / f"{schema_id(schema)}.parquet"
        if not path.exists():
            buf = io.BytesIO()
            pq.write_table(schema.empty_table(), buf)
            self._atomic_write(path, buf.getvalue())
        return path.as_posix()

    def _write_connect_sql(self) -> None:
        template = _secret_sql(
            self._access, self.location, key_id="<AWS_ACCESS_KEY_ID>",
            secret="<AWS_SECRET_ACCESS_KEY>", token=None,
        )
        text = (
            f"-- Run this in DuckDB before querying {self.root / 'catalog.duckdb'}:\n"
            f"-- its views read the Parquet parts of {self.location}.\n"
            f"-- Fill in your own credentials; this file never holds secrets. With the aws\n"
            f"-- extension (pip install duckdb-extension-aws=={duckdb.__version__}) you may\n"
            f"-- instead write PROVIDER credential_chain for KEY_ID and SECRET.\n"
            f"LOAD {_sql(httpfs_extension_path().as_posix())};\n{template};\n"
        )
        path = self.root / "connect.sql"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            self._atomic_write(path, text.encode())

    # --- writing -----------------------------------------------------------------------
    def write(self, batch_id: str, day: dt.date, tables: Mapping[str, pa.Table],
              recorder: Recorder | None = None) -> str:
        def upload(item: tuple[str, pa.Table]) -> PartEntry:
            table_, t = item
            buf = io.BytesIO()
            write_parquet(t, buf)
            data = buf.getvalue()
            name = f"{PARTS}{batch_id}/{table_}.parquet"
            version, sha = self.objects.put(name, data)
            return PartEntry(table_, name, t.num_rows, len(data), sha, version,
                             schema_id(t.schema))

        todo = [(name, t) for name, t in tables.items() if t.num_rows]
        try:
            with ThreadPoolExecutor(min(_UPLOAD_THREADS, max(1, len(todo)))) as pool:
                entries = tuple(pool.map(upload, todo))
            manifest = Manifest(batch_id, day.isoformat(), entries)
            data = manifest.to_json()
            name = manifest_name(batch_id, day)
            if recorder is not None:  # the audit record is durable before the commit
                recorder(self.location, manifest, hashlib.sha256(data).hexdigest())
            # The commit: after this one PUT the batch is visible, before it nothing is.
            self.objects.put(name, data)
        except StoreError as exc:
            raise CatalogError(f"{self.location}: batch {batch_id} not committed: {exc}") from exc
        self._cache(name, data)
        return f"{self.location}/{name}"

    def write_parts_only(self, batch_id: str, tables: Mapping[str, pa.Table]) -> None:
        """Upload parts and no manifest: what a writer that dies before its commit leaves."""
        for table_, t in tables.items():
            buf = io.BytesIO()
            write_parquet(t, buf)
            self.objects.put(f"{PARTS}{batch_id}/{table_}.parquet", buf.getvalue())

    def clear_staging(self) -> None:
        """Nothing to clear: uncommitted parts are invisible and locked (see module doc)."""

    # --- reading -----------------------------------------------------------------------
    def _cache_path(self, name: str) -> Path:
        return self._manifests / name.removeprefix(COMMITS).replace("/", "__")

    def _cache(self, name: str, data: bytes) -> None:
        path = self._cache_path(name)
        if not path.exists():
            self._atomic_write(path, data)

    def _names(self, under: str) -> list[str]:
        try:
            return [n for n, _ in self.objects.list(under) if n.endswith(".json")]
        except StoreError as exc:
            raise CatalogError(f"{self.location}: cannot read the catalog: {exc}") from exc

    def _manifest_data(self, name: str, fresh: bool = False) -> bytes:
        """One manifest's bytes: from the local cache, or a GET (`fresh`: always a GET, for
        verify, which must not trust the cache)."""
        path = self._cache_path(name)
        if path.exists() and not fresh:
            return path.read_bytes()
        try:
            data = self.objects.get(name)
        except StoreError as exc:
            raise CatalogError(f"{self.location}: cannot read the catalog: {exc}") from exc
        self._cache(name, data)
        return data

    def _manifest(self, name: str) -> Manifest:
        m = self._parsed.get(name)
        if m is None:
            m = self._parsed[name] = Manifest.from_json(
                self._manifest_data(name), f"{self.location}/{name}")
        return m

    def _latest_compaction(self) -> str | None:
        names = self._names(COMPACTIONS)
        return max(names) if names else None

    def current(self) -> Current:
        """The latest compaction's parts and every batch manifest it does not cover: one
        LIST of `compactions/`, one LIST of `commits/` per 1,000 batches, and only the
        manifests not yet cached fetched."""
        latest = self._latest_compaction()
        parts: list[PartEntry] = []
        covered: frozenset[str] = frozenset()
        folded: tuple[str, ...] = ()
        if latest is not None:
            c = self._manifest(latest)
            parts += [*c.parts, *c.carried]
            covered, folded = frozenset(c.covers), c.folded
        names = self._names(COMMITS)
        for name in names:
            if name not in covered:
                parts += self._manifest(name).parts
        return Current(tuple(parts), latest, tuple(names), folded)

    def manifests(self) -> list[Manifest]:
        """Every committed batch now (one LIST; cached manifests are not fetched again)."""
        return [self._manifest(name) for name in self._names(COMMITS)]

    def commits(self) -> list[Commit]:
        out = []
        for name in [*self._names(COMMITS), *self._names(COMPACTIONS)]:
            data = self._manifest_data(name, fresh=True)
            out.append(Commit(Manifest.from_json(data, f"{self.location}/{name}"),
                              hashlib.sha256(data).hexdigest()))
        return out

    def read_part(self, part: PartEntry) -> bytes:
        try:
            return self.objects.get(part.name)
        except StoreError as exc:
            raise CatalogError(f"{self.location}/{part.name}: cannot read: {exc}") from exc

    def staging(self, compaction_id: str) -> Path:
        return new_stage(self.root, compaction_id)

    def publish(self, compaction_id: str, day: dt.date, staged: Sequence[Staged],
                carried: Sequence[PartEntry], base: Current,
                recorder: Recorder | None = None) -> str:
        """Upload the staged parts under `parts/<id>/`, then PUT the compaction's manifest
        `compactions/<id>.json` (the commit); batches committed meanwhile are not in its
        `covers`, so readers still take them."""
        def upload(st: Staged) -> PartEntry:
            data = st.path.read_bytes()
            name = f"{PARTS}{compaction_id}/{st.path.name}"
            version, sha = self.objects.put(name, data)
            return PartEntry(st.table, name, st.rows, len(data), sha, version, st.schema_id)

        try:
            with ThreadPoolExecutor(min(_UPLOAD_THREADS, max(1, len(staged)))) as pool:
                entries = tuple(pool.map(upload, staged))
            if self._latest_compaction() != base.base:
                raise CatalogError(f"{self.location}: another compaction was committed while "
                                   "this one ran; nothing changed, run it again")
            manifest = Manifest(compaction_id, day.isoformat(), entries, COMPACTION,
                                tuple(carried), base.base, base.covers,
                                folded_names(entries, carried))
            data = manifest.to_json()
            name = f"{COMPACTIONS}{compaction_id}.json"
            if recorder is not None:  # the audit record is durable before the commit
                recorder(self.location, manifest, hashlib.sha256(data).hexdigest())
            self.objects.put(name, data)  # the commit
        except StoreError as exc:
            raise CatalogError(
                f"{self.location}: compaction {compaction_id} not committed: {exc}") from exc
        self._cache(name, data)
        shutil.rmtree(staged[0].path.parent, ignore_errors=True)
        return f"{self.location}/{name}"

    def chain_break(self) -> tuple[int, str] | None:
        return None  # manifests are separate locked objects; each is checked on its own

    def stored_parts(self) -> dict[str, int]:
        try:
            return dict(self.objects.list(PARTS))
        except StoreError as exc:
            raise CatalogError(f"{self.location}: cannot list the catalog: {exc}") from exc

    def part_digest(self, name: str) -> tuple[int, str] | None:
        try:
            data = self.objects.get(name)
        except ObjectNotFound:
            return None
        except StoreError as exc:
            raise CatalogError(f"{self.location}: cannot read {name}: {exc}") from exc
        return len(data), hashlib.sha256(data).hexdigest()

    def where(self, name: str) -> str:
        return f"{self.location}/{name}"

    def views(self) -> tuple[dict[str, str], list[str]]:
        groups: dict[str, dict[str, list[str]]] = {name: {} for name in self._empty}
        tables, unfolded = self.current().read()
        for view, parts in ((None, tables), (UNFOLDED, unfolded)):
            for p in parts:
                url = f"s3://{self.objects.bucket}/{self.objects.key(p.name)}"
                groups.setdefault(view or p.table, {}).setdefault(p.schema_id, []).append(url)
        views, readable = {}, []
        for table_, by_schema in groups.items():
            if table_ not in self._empty:
                continue  # a table this release does not know; its parts stay unread
            selects = [f"SELECT * FROM read_parquet({_sql(self._empty[table_])})"]
            readable.append(self._empty[table_])
            for urls in by_schema.values():
                files = ", ".join(_sql(u) for u in urls)
                selects.append(f"SELECT * FROM read_parquet([{files}])")
                readable += urls
            views[table_] = " UNION ALL BY NAME ".join(selects)
        return views, list(dict.fromkeys(readable))

    def base_views(self) -> dict[str, str]:
        return self.views()[0]

    def read_table(self, cls: type[Any], columns: Sequence[str] | None) -> pa.Table:
        """The table's parts fetched by boto3, each checked against the SHA-256 its manifest
        records, and read by Arrow as the view reads them (a column a part lacks is null):
        no DuckDB, httpfs extension and secret to set up (0.15-0.3 s of CPU) for ingest's
        few columns."""
        name, schema = table_name(cls), arrow_schema(cls)
        tables = [schema.empty_table()]
        try:
            for p in self.current().parts:
                if p.table != name:
                    continue
                data = self.objects.get(p.name)
                if hashlib.sha256(data).hexdigest() != p.sha256:
                    raise CatalogError(
                        f"{self.location}/{p.name}: part does not match the SHA-256 in "
                        "its manifest; the catalog is damaged"
                    )
                tables.append(pq.read_table(io.BytesIO(data), schema=schema))
        except StoreError as exc:
            raise CatalogError(f"{self.location}: cannot read the catalog: {exc}") from exc
        table = pa.concat_tables(tables)
        return table.select(list(columns)) if columns is not None else table

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute(f"LOAD {_sql(httpfs_extension_path().as_posix())}")
        con.execute(self._secret_sql)
        con.execute("SET enable_http_metadata_cache = true")
        con.execute("SET parquet_metadata_cache = true")

    def renew(self, con: duckdb.DuckDBPyConnection) -> None:
        """Temporary credentials (SSO, roles) are refreshed by boto3 near their expiry;
        hand DuckDB the new ones when they changed."""
        fresh = self._resolve_access()
        if fresh != self._access:
            self._access = fresh
            self._secret_sql = _secret_sql(fresh, self.location)
            con.execute(self._secret_sql)


def _secret_sql(
    access: S3Access,
    location: str,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
) -> str:
    """A temporary DuckDB S3 secret scoped to the catalog's bucket, from what boto3 resolved."""
    template = key_id is not None
    opts: dict[str, Any] = {"TYPE": "s3", "KEY_ID": key_id or access.key_id,
                            "SECRET": secret or access.secret, "REGION": access.region}
    if not template and access.token:
        opts["SESSION_TOKEN"] = access.token
    elif template and token:
        opts["SESSION_TOKEN"] = token
    if access.endpoint_url:
        ep = urlsplit(access.endpoint_url)
        opts["ENDPOINT"] = ep.netloc + ep.path.rstrip("/")
        opts["USE_SSL"] = ep.scheme == "https"
    opts["URL_STYLE"] = "path" if access.addressing_style == "path" else "vhost"
    opts["SCOPE"] = "s3://" + urlsplit(location).netloc
    body = ", ".join(
        f"{k} {str(v).lower() if isinstance(v, bool) else _sql(str(v))}"
        for k, v in opts.items()
    )
    return f"CREATE OR REPLACE SECRET custody_catalog ({body})"
