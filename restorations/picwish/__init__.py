"""Everything PicWish: the HTTP client, the rate limiter, the poll planner, sending, polling,
fetching, the key pause and its Celery entry points (docs/rate-limiting.md)."""
