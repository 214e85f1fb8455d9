"""`gmvit serve`: run the HTTP API under uvicorn (settings from GMVIT_* variables)."""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the shape service (HTTP API and web page)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (%(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:  %(message)s")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)
    return 0
