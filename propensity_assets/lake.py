"""The lake: Parquet datasets at `<root>/<table>/`, Hive-partitioned (CONTRACTS §5).

Every write goes aside first, into `<root>/_staging/<id>/`, and is then swapped
into place partition by partition. A run that fails or is killed while writing
leaves the previous version of every partition readable, and re-writing a
partition replaces exactly that partition. Readers (Spark, pyarrow, DuckDB,
pandas) skip the `_staging` directory because of its leading underscore.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

PartitionSpec = Mapping[str, str]  # e.g. {"as_of": "2017-12-01", "product_group": "eggs"}


def _pyarrow_uri(uri: str) -> str:
    # Spark speaks s3a://, pyarrow speaks s3://; both name the same objects.
    return "s3://" + uri[len("s3a://") :] if uri.startswith("s3a://") else uri


def _fs_path(uri: str) -> str:
    """A URI or path as the path pyarrow's filesystem for it expects."""
    return _pyarrow_uri(uri).split("://", 1)[-1] if "://" in uri else uri


def partition_dir(spec: PartitionSpec) -> str:
    return "/".join(f"{key}={value}" for key, value in spec.items())


@dataclass(frozen=True)
class Lake:
    root: str

    @property
    def _fs_and_root(self) -> tuple[pafs.FileSystem, str]:
        fs, path = pafs.FileSystem.from_uri(_pyarrow_uri(self.root))
        return fs, path.rstrip("/")

    def uri(self, table: str) -> str:
        """The table's URI as Spark should read or write it."""
        return f"{self.root.rstrip('/')}/{table}"

    def staging_uri(self) -> str:
        return f"{self.root.rstrip('/')}/_staging/{uuid.uuid4().hex}"

    def exists(self, table: str, spec: PartitionSpec | None = None) -> bool:
        fs, root = self._fs_and_root
        path = f"{root}/{table}" + (f"/{partition_dir(spec)}" if spec else "")
        return fs.get_file_info(path).type == pafs.FileType.Directory

    def partitions(self, table: str, key: str) -> list[str]:
        """Values of the first-level partition column `key` present in `table`."""
        fs, root = self._fs_and_root
        selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True)
        prefix = f"{key}="
        return sorted(
            info.base_name[len(prefix) :]
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
        )

    # -- writing ---------------------------------------------------------------------------

    def commit(self, table: str, staging_uri: str, specs: Iterable[PartitionSpec]) -> int:
        """Swap staged partitions into `table`, one directory rename each.

        A spec with nothing staged deletes that partition: the new version of it is
        empty. An empty spec means the whole (unpartitioned) table. Returns how many
        partitions now hold data.
        """
        fs, root = self._fs_and_root
        staging = _fs_path(staging_uri)
        trash = f"{staging}/_replaced"
        written = 0
        for spec in specs:
            rel = partition_dir(spec)
            source = f"{staging}/{rel}" if rel else f"{staging}/data"
            target = f"{root}/{table}" + (f"/{rel}" if rel else "")
            old = f"{trash}/{rel or 'data'}"
            has_new = fs.get_file_info(source).type == pafs.FileType.Directory
            if fs.get_file_info(target).type == pafs.FileType.Directory:
                fs.create_dir(old.rsplit("/", 1)[0], recursive=True)
                fs.move(target, old)
            if has_new:
                fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
                fs.move(source, target)
                written += 1
        if fs.get_file_info(staging).type == pafs.FileType.Directory:
            fs.delete_dir(staging)
        return written

    def discard(self, staging_uri: str) -> None:
        fs, _ = self._fs_and_root
        path = _fs_path(staging_uri)
        if fs.get_file_info(path).type == pafs.FileType.Directory:
            fs.delete_dir(path)

    def write_pandas(
        self,
        table: str,
        df: pd.DataFrame,
        partition_cols: Sequence[str] = (),
        specs: Iterable[PartitionSpec] | None = None,
    ) -> int:
        """Write a pandas frame aside, then swap it in.

        Unpartitioned tables are replaced whole. For a partitioned table, `specs` names
        the partitions this write owns (default: those present in `df`); each is
        replaced, including ones `df` has no rows for.
        """
        staging = self.staging_uri()
        fs, _ = self._fs_and_root
        path = _fs_path(staging)
        arrow = pa.Table.from_pandas(df, preserve_index=False)
        # Spark 4 refuses nanosecond timestamps (PARQUET_TYPE_ILLEGAL): write microseconds.
        arrow = arrow.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.timestamp("us", f.type.tz), f.nullable)
                    if pa.types.is_timestamp(f.type)
                    else f
                    for f in arrow.schema
                ]
            )
        )
        try:
            if not partition_cols:
                fs.create_dir(f"{path}/data", recursive=True)
                pq.write_table(arrow, f"{path}/data/part-00000.parquet", filesystem=fs)
                return self.commit(table, staging, [{}])
            if specs is None:
                keys = df[list(partition_cols)].drop_duplicates().astype(str)
                specs = [dict(zip(partition_cols, row)) for row in keys.itertuples(index=False)]
            arrow_parts = arrow.drop_columns(list(partition_cols))
            for spec in specs:
                mask = pd.Series(True, index=df.index)
                for col, value in spec.items():
                    mask &= df[col].astype(str) == value
                if not mask.any():
                    continue
                part_dir = f"{path}/{partition_dir(spec)}"
                fs.create_dir(part_dir, recursive=True)
                pq.write_table(
                    arrow_parts.filter(pa.array(mask.to_numpy())),
                    f"{part_dir}/part-00000.parquet",
                    filesystem=fs,
                )
            return self.commit(table, staging, specs)
        except BaseException:
            self.discard(staging)
            raise

    # -- reading ---------------------------------------------------------------------------

    def read_pandas(self, table: str, filters=None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read a table (with its Hive partition columns as strings) into pandas."""
        fs, root = self._fs_and_root
        path = f"{root}/{table}"
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            raise FileNotFoundError(f"Lake table {table!r} does not exist at {self.uri(table)}")
        # Partition values are strings: type inference would turn a group key such as
        # `2024` (a valid [a-z0-9_]+ key) into an int, and string filters would then fail.
        keys = self._partition_keys(fs, path)
        dataset = ds.dataset(
            path,
            filesystem=fs,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")
            if keys
            else None,
            ignore_prefixes=["_", "."],
        )
        return dataset.to_table(filter=filters, columns=list(columns) if columns else None).to_pandas()

    @staticmethod
    def _partition_keys(fs: pafs.FileSystem, path: str) -> list[str]:
        """The Hive partition columns of the dataset at `path`, outermost first."""
        keys: list[str] = []
        while True:
            infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            sub = next(
                (
                    info
                    for info in sorted(infos, key=lambda info: info.base_name)
                    if info.type == pafs.FileType.Directory
                    and "=" in info.base_name
                    and not info.base_name.startswith(("_", "."))
                ),
                None,
            )
            if sub is None:
                return keys
            keys.append(sub.base_name.split("=", 1)[0])
            path = sub.path

    def partitions_in(self, table: str) -> bool:
        fs, root = self._fs_and_root
        selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True)
        return any("=" in info.base_name for info in fs.get_file_info(selector))
