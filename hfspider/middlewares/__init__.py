"""Scrapy downloader middlewares: thin plumbing over the pure Hub knowledge in hfspider.hub
and the rate-limit budget in hfspider.budget."""
