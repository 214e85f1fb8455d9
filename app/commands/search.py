"""`gmvit search FILE -k 5`: the nearest indexed shapes to a mesh, from a running server."""

from __future__ import annotations

import argparse

from app.client import Client, add_client_arguments, print_hits, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="find the nearest indexed shapes to a mesh")
    parser.add_argument("file", help="a mesh file")
    parser.add_argument("-k", "--top-k", type=int, default=10, help="how many (1-100)")
    parser.add_argument("--label", help="only shapes with this label")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    answer = Client.from_args(args).upload(
        args.file, "/search", {"top_k": args.top_k, "label": args.label}
    )
    if args.json:
        print_json(answer)
    else:
        print_hits(answer["results"])
    return 0
