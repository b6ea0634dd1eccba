"""Scrapy extensions: malloc arenas limited early, the live progress line and the
end-of-crawl summary."""
