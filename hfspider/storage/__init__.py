"""Transport: getting encoded IPFS data (CAR files) into a Kubo node and proving it is there.

`kubo` is the RPC client, `queue` the durable import queue, `adapter` the component the
crawl uses. Nothing here encodes blocks; hfspider.ipfs does.
"""

from hfspider.storage.adapter import KuboStorage, StorageError
from hfspider.storage.kubo import KuboClient, KuboError, KuboUnavailableError
from hfspider.storage.queue import ImportEntry, ImportQueue

__all__ = [
    "ImportEntry",
    "ImportQueue",
    "KuboClient",
    "KuboError",
    "KuboStorage",
    "KuboUnavailableError",
    "StorageError",
]
