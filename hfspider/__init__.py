"""hfspider: a Scrapy project that mirrors Hugging Face Hub models into content-addressed storage.

Layout (one concern per package):
    hub/          pure Hub knowledge: endpoints, typed API objects, parsing, normalisation
    hubsim/       the bundled Hub emulator (aiohttp) used by tests, demos and benchmarks
    ipfs/         IPFS encoding only: CIDs, UnixFS importer, dag-pb, DAG-CBOR, CAR
    storage/      transport to an IPFS node (Kubo RPC over HTTP) and the durable import queue
    spiders/      Scrapy spiders (hf_models)
    middlewares/  downloader middlewares: auth, quota pacing, retries
    pipelines/    item pipelines: validate, download files, IPFS, record store
    store/        the durable record store (SQLite) and Parquet export
"""

__version__ = "0.1.0"
