"""Scrapy extensions: the live progress line and the end-of-crawl summary."""
