"""Pure Hugging Face Hub knowledge: endpoints, typed API objects, tokens, model cards and the
normalisation of API answers into published records. No Scrapy and no I/O here, so that every
rule about the Hub is one unit-tested function that the spider merely calls.

* `endpoints`: URL builders for every endpoint the crawler uses, the `Link` pagination parser.
* `auth`: the token lookup and the same-origin rule that keeps the token on the Hub.
* `api`: typed dataclasses for the Hub's JSON and their tolerant parsers.
* `card`: model card front matter (bounded YAML) and a plain-text description.
* `vocabulary`: the Hub's task (pipeline) names and ISO 639-1 language codes.
* `normalise`: one record (see hfspider/schema/record.schema.json) per model snapshot.
"""
