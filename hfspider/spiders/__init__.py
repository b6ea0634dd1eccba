"""Scrapy spiders. `hf_models` is the main job."""
