"""`hfspider cid PATH`: the CID `ipfs add -Q --only-hash [-r]` prints for a file or tree."""

from __future__ import annotations

import argparse
import sys

from hfspider.config import load_settings
from hfspider.ipfs.add import add_path
from hfspider.ipfs.blockstore import DiscardSink
from hfspider.ipfs.cid import cid_str
from hfspider.ipfs.params import PRESETS, params_from_settings


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Options shared by `cid` and `car`."""
    args = argparse.ArgumentParser(prog=prog, description=description)
    args.add_argument("path", help="a file or a directory (added recursively)")
    args.add_argument(
        "--profile",
        choices=sorted(PRESETS),
        help="import profile (default: the IPFS_PROFILE setting, unixfs-v1-2025)",
    )
    args.add_argument("-H", "--hidden", action="store_true", help="include hidden files")
    return args


def main(argv: list[str]) -> int:
    options = parser("hfspider cid", __doc__ or "").parse_args(argv)
    params = PRESETS[options.profile] if options.profile else params_from_settings(load_settings())
    try:
        root = add_path(options.path, params, DiscardSink(), hidden=options.hidden)
    except OSError as exc:
        print(f"hfspider cid: {exc}", file=sys.stderr)
        return 1
    print(cid_str(root.cid))
    return 0
