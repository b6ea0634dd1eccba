"""`hfspider demo`: the offline variant of the main job, as the README gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from hfspider.hubsim.corpus import build_corpus

MODELS, SEED = 40, 3


def test_demo_crawls_the_emulator_and_writes_every_listed_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HF_TOKEN": "hf_must_not_be_used"}
    done = subprocess.run(
        [sys.executable, "-m", "hfspider.cli", "demo", "--models", str(MODELS)]
        + ["--seed", str(SEED), "--", "-a", "mode=lite", "-s", f"OUTPUT_DIR={out}"],
        cwd=tmp_path,  # anywhere: the demo finds the settings itself
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hub emulator at http://localhost:" in done.stdout
    rows = ds.dataset(out / "parquet", format="parquet", partitioning="hive").to_table()
    expected = {m.id for m in build_corpus(MODELS, SEED, huge_files=0).listed()}
    assert sorted(rows.column("model_id").to_pylist()) == sorted(expected)
    assert "hf_must_not_be_used" not in done.stderr + done.stdout
