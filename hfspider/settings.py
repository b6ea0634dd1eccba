"""Scrapy settings for hfspider: everything comes from pipelines_config/*.toml (see config.py)."""

from hfspider.config import load_settings

BOT_NAME = "hfspider"
SPIDER_MODULES = ["hfspider.spiders"]
NEWSPIDER_MODULE = "hfspider.spiders"

# TOML has no null, and only None disables a download handler: local files, data: URLs, FTP
# and S3 are never needed and would open SSRF-style holes (scrapy-notes.md §8).
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}

globals().update(load_settings())
