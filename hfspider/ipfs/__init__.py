"""IPFS encoding: CIDs, UnixFS files and directories, DAG-CBOR records, CAR files.

No network and no I/O beyond the sinks and files it is handed; talking to a node is
hfspider.storage's job. The names below are the API the crawl pipeline uses.
"""

from hfspider.ipfs.blockstore import (
    BlockSink,
    BlockstoreError,
    DiscardSink,
    FileBlockstore,
    MemoryBlockstore,
    RawLeaves,
)
from hfspider.ipfs.car import CarError, export_car, read_car, verify_car, write_car_file
from hfspider.ipfs.cid import cid_bytes, cid_str, sha256_cid
from hfspider.ipfs.directory import build_directory, build_tree, symlink
from hfspider.ipfs.importer import FileImporter, ImportedFile, import_bytes, import_stream
from hfspider.ipfs.nodes import Link
from hfspider.ipfs.params import (
    DEFAULT_PROFILE,
    PRESETS,
    ImportParams,
    params_from_settings,
    preset,
)
from hfspider.ipfs.snapshot import (
    ModelSnapshot,
    SnapshotError,
    build_crawl_root,
    build_snapshot,
    write_crawl_root_car,
)

__all__ = [
    "DEFAULT_PROFILE",
    "PRESETS",
    "BlockSink",
    "BlockstoreError",
    "CarError",
    "DiscardSink",
    "FileBlockstore",
    "FileImporter",
    "ImportParams",
    "ImportedFile",
    "Link",
    "MemoryBlockstore",
    "ModelSnapshot",
    "RawLeaves",
    "SnapshotError",
    "build_crawl_root",
    "build_directory",
    "build_snapshot",
    "build_tree",
    "cid_bytes",
    "cid_str",
    "export_car",
    "import_bytes",
    "import_stream",
    "params_from_settings",
    "preset",
    "read_car",
    "sha256_cid",
    "symlink",
    "verify_car",
    "write_car_file",
    "write_crawl_root_car",
]
