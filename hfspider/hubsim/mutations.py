"""The Hub changing over time: mutations requested by tests, on a schedule, or by a fault.

`POST /_hubsim/mutate` takes one mutation, a list of them, or `{"random": K}`:

    {"op": "add"}                                   a new synthetic model
    {"op": "update", "id": "org/name"}              a new commit: new sha and lastModified
    {"op": "delete", "id": "org/name"}
    {"op": "rename", "id": "org/name", "to": "org/new-name"}   the old id then answers 307
    {"op": "gate", "id": "org/name", "gated": "manual"}        "auto", "manual" or false

Random mutations (the admin's `random`, `--mutate-every`, the `flap` fault) are drawn from a
generator seeded by the corpus seed, so a run's sequence of changes is reproducible. Every
applied mutation is recorded with its time; `GET /_hubsim/mutations` returns them, and
replaying them with `Corpus.apply` on `build_corpus(n, seed)` gives the emulator's state.
"""

from __future__ import annotations

import random
import time
from typing import Any

from hfspider.hubsim.corpus import MUTATION_OPS, Corpus, Model, Mutation

RANDOM_OPS = (("update", 50), ("add", 20), ("rename", 10), ("gate", 10), ("delete", 10))


class Mutator:
    """Applies mutations to the served corpus and keeps the random ones reproducible."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.rng = random.Random(f"hubsim-mutations:{corpus.seed}")

    def apply(self, mutation: Mutation) -> dict[str, Any]:
        """Apply one mutation; the answer names the model after it."""
        model = self.corpus.apply(mutation)
        answer = self.corpus.mutations[-1].to_json()
        if model is not None:
            answer.update({"id": model.id, "sha": model.sha, "lastModified": model.last_modified})
        return answer

    def random(self, cause: str) -> dict[str, Any]:
        """One random mutation of a synthetic model."""
        ops, weights = zip(*RANDOM_OPS, strict=True)
        op = self.rng.choices(ops, weights)[0]
        candidates = sorted(m.id for m in self.corpus.synthetic())
        if op == "add" or not candidates:
            return self.apply(Mutation("add", time.time(), cause=cause))
        target = self.rng.choice(candidates)
        gated = self.rng.choice((False, "auto", "manual")) if op == "gate" else None
        return self.apply(Mutation(op, time.time(), model_id=target, gated=gated, cause=cause))

    def update(self, model: Model, cause: str) -> dict[str, Any]:
        return self.apply(Mutation("update", time.time(), model_id=model.id, cause=cause))

    def from_request(self, body: Any) -> list[dict[str, Any]]:
        """Apply what `POST /_hubsim/mutate` asked for (raises ValueError / KeyError)."""
        requests = body if isinstance(body, list) else [body]
        applied = []
        for request in requests:
            if not isinstance(request, dict):
                raise ValueError("a mutation is a JSON object")
            if "random" in request:
                applied += [self.random("admin") for _ in range(int(request["random"]))]
                continue
            op = request.get("op")
            if op not in MUTATION_OPS:
                raise ValueError(f"op must be one of {', '.join(MUTATION_OPS)}")
            applied.append(
                self.apply(
                    Mutation(
                        op,
                        time.time(),
                        model_id=request.get("id"),
                        new_id=request.get("to"),
                        gated=request.get("gated"),
                    )
                )
            )
        return applied
