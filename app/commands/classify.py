"""`gmvit classify FILE`: ask a running server what a mesh is."""

from __future__ import annotations

import argparse

from app.client import Client, add_client_arguments, print_hits, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify", help="classify a mesh with a running server (head + neighbour vote)"
    )
    parser.add_argument("file", help="a mesh file")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="neighbours in the vote")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    answer = Client.from_args(args).upload(args.file, "/classify", {"top_k": args.top_k})
    if args.json:
        answer.pop("views_png", None)
        print_json(answer)
        return 0
    neighbors = answer["neighbors"]
    print(f"label: {answer['label'] or 'I do not know'} ({answer['reason']})")
    print(
        "head:  "
        + ", ".join(f"{p['label']} {p['probability']:.3f}" for p in answer["probabilities"])
    )
    votes = ", ".join(f"{label} {n}" for label, n in neighbors["votes"].items()) or "none"
    print(f"vote of {neighbors['k']} nearest: {neighbors['label'] or '-'} ({votes})")
    print_hits(neighbors["shapes"])
    return 0
