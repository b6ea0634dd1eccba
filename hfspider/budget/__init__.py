"""The Hub's rate limits as a budget: pacing (pure), where the budget lives (this process or
Redis), and the limiter that Scrapy's middleware and the file downloader both go through.

* `pacing`: `BucketBudget` (quota spent evenly per window) and `Breaker` (backoff, circuit).
* `backends`: `LocalBudget` and `RedisBudget` (the same algorithm as one Lua script).
* `limiter`: `Limiter.acquire/observe/failed`, settings, logging and stats.
"""
