"""The `hfspider` console script: one entry point, one module per sub-command.

Each sub-command lives next to the code it drives and exposes `main(argv) -> int`; it is
imported only when chosen, so `hfspider hubsim` does not pay for pyarrow or Scrapy imports.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with a main(argv) function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "hubsim": ("hfspider.hubsim.__main__", "run the local Hub emulator (docs/hubsim.md)"),
    "demo": ("hfspider.demo", "crawl the bundled Hub emulator: the main job, offline"),
    "crawl-distributed": (
        "hfspider.distributed.launcher",
        "crawl with a lister and N worker processes sharing Redis, then export one dataset",
    ),
    "export": ("hfspider.store.parquet", "write hive-partitioned Parquet from record stores"),
    "cid": ("hfspider.ipfs.cli_cid", "print the CID `ipfs add --only-hash` gives a file or tree"),
    "car": ("hfspider.ipfs.cli_car", "write a file or tree as a CAR (`ipfs dag export` layout)"),
}


def usage() -> str:
    width = max((len(name) for name in COMMANDS), default=0)
    lines = ["usage: hfspider COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run `hfspider COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"hfspider: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
