"""hubsim: a local Hugging Face Hub that the official client cannot tell from the real one.

The emulator serves a deterministic corpus over HTTP with the Hub's shapes, errors, rate limits
and redirects, so that crawls, downloads and quota handling can be tested offline and repeatably.
Start it with `hfspider hubsim --port P --cdn-port Q --models N --seed S` (see docs/hubsim.md).

One module per concern, from the data up to the wire:

    corpus      who is on the Hub: models, revisions and the generator's ground truth (`Intent`);
                `build_corpus(n, seed)` is pure, so tests rebuild the truth in-process
    families    architecture families: config.json templates, tokenizers, weight layouts
    repofiles   what is in each repo revision: file lists and the text of every small file
    content     file bytes: rendered text or a ChaCha20 keystream (random access, never stored),
                their git and LFS hashes, computed lazily and cached on disk
    samples     real recorded Hub answers, served byte for byte for their repo ids
    listing     `GET /api/models` and `/api/datasets`: filters, sorts, opaque cursors
    wire        the JSON shapes of every endpoint and the Hub's error answers
    ratelimit   fixed-window quotas per tier and bucket, `RateLimit` headers
    faults      seeded fault injection (5xx, resets, truncation, slowness, flapping models)
    log         the request log and counters behind `/_hubsim/log` and `/_hubsim/stats`
    mutations   the Hub changing over time: admin mutations and a schedule
    responses   how answers leave: JSON and its ETag, errors, ranges, counted streamed bodies
    routes      one aiohttp handler per endpoint, API origin and CDN origin
    server      the two origins, the request pipeline (limits, faults, log), start and stop
    options     the settings of one run; __main__ turns the command line into them
"""
