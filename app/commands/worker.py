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

    from app import jobs, resources
    from app.settings import load_settings

    settings = load_settings()
    if not settings.redis_url:
        raise CLIError("gmvit worker needs a queue: set GMVIT_REDIS_URL (e.g. redis://host:6379)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:  %(message)s")
    connection = redis.Redis.from_url(settings.redis_url)
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise CLIError(f"cannot reach Redis at {settings.redis_url}: {exc}") from None
    finally:
        connection.close()
    # The model and the index, opened once for every piece this worker runs.
    embedder = resources.load_embedder(settings)
    target = jobs.ReindexTarget(
        settings=settings,
        embedder=embedder,
        index=resources.open_index(settings, embedder.model_id),
        folders=jobs.JobFolders(settings.jobs_dir),
    )
    try:
        jobs.run_worker(target, settings.redis_url, burst=args.burst)
    finally:
        target.close()
        embedder.close()
        target.index.close()
    return 0
