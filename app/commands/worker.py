"""`gmvit worker`: run reindex jobs from Redis (GMVIT_REDIS_URL), any number of them, on
any machine that shares the server's data dir."""

from __future__ import annotations

import argparse
import logging

from app.cli import CLIError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run reindex jobs from the Redis queue")
    parser.add_argument(
        "--burst", action="store_true", help="exit when the queue is empty instead of waiting"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import redis
    import rq

    from app import jobs
    from app.settings import Settings

    settings = Settings()
    if not settings.redis_url:
        raise CLIError("gmvit worker needs a queue: set GMVIT_REDIS_URL (e.g. redis://host:6379)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:  %(message)s")
    connection = redis.Redis.from_url(settings.redis_url)
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise CLIError(f"cannot reach Redis at {settings.redis_url}: {exc}") from None
    # Load the model and open the index once, before the first job arrives.
    jobs.worker_target()
    # Jobs run in this process (no fork per job): the model stays loaded between jobs.
    worker = rq.SimpleWorker(
        [rq.Queue(jobs.RQ_QUEUE, connection=connection)], connection=connection
    )
    worker.work(burst=args.burst, with_scheduler=False)
    return 0
