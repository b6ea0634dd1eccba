"""Item pipelines, in order: validate (100) -> files (300) -> ipfs (500) -> store (900).

Each takes and returns a `hfspider.items.ModelItem`; a model that cannot go on is written to
output/rejected/ with its reasons and dropped, never lost silently.
"""
