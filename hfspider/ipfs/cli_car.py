"""`hfspider car PATH -o OUT.car`: a CARv1 of a file or tree, as `ipfs dag export` lays it out.

Blocks are spooled to a temporary file next to OUT while importing, so memory stays small
for any input size; the CAR appears atomically when complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hfspider.config import load_settings
from hfspider.ipfs.add import add_path
from hfspider.ipfs.blockstore import FileBlockstore
from hfspider.ipfs.car import write_car_file
from hfspider.ipfs.cid import cid_str
from hfspider.ipfs.cli_cid import parser
from hfspider.ipfs.params import PRESETS, params_from_settings


def main(argv: list[str]) -> int:
    args = parser("hfspider car", __doc__ or "")
    args.add_argument("-o", "--output", required=True, help="the CAR file to write")
    options = args.parse_args(argv)
    params = PRESETS[options.profile] if options.profile else params_from_settings(load_settings())
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileBlockstore(output.with_name(output.name + ".blocks")) as store:
            root = add_path(options.path, params, store, hidden=options.hidden)
            summary = write_car_file(output, [root.cid], store)
    except OSError as exc:
        print(f"hfspider car: {exc}", file=sys.stderr)
        return 1
    print(cid_str(root.cid))
    print(f"{summary.blocks} blocks, {summary.bytes} bytes -> {output}", file=sys.stderr)
    return 0
