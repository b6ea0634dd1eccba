"""Distributed crawls: one lister walks the Hub's listing, any number of workers crawl the
models, through a leased work queue in Redis (JSON, never pickle). See README.md.

* `work`: the JSON work item (the raw listing item, the crawl mode and id).
* `queue`: the leased queue (Lua scripts on the Redis server's clock).
* `lister`: the lister's item pipeline, which queues each listed model.
* `worker`: taking leased work, renewing leases, acknowledging settled models.
* `roles`: what `-a role=lister|worker` changes in the hf_models spider's process.
* `launcher`: `hfspider crawl-distributed`, one lister and N workers on this machine.
"""
