"""Model files: selection, safe paths, streaming verified downloads and the local cache.

* `config`: the `[files]` settings; `select`: which files (globs, size caps), pure.
* `paths`: the output layout and the refusal of hostile repo paths, pure but for mkdir.
* `verify`: the Hub's values, one-pass hashes (sha256, CID, git blob sha1), answer rules.
* `download`: the aiohttp transport (redirects, token rule, limiter, Range resume, retries).
* `cache`: the size-capped LRU of fetched files that never evicts what IPFS lacks.

The Scrapy plumbing is hfspider.pipelines.files.FilesPipeline; docs/files.md tells the story.
"""
