"""`gmvit index {add,rm,ls}`: manage the shapes of a running server."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from app.cli import CLIError
from app.client import Client, add_client_arguments, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("index", help="add, remove and list indexed shapes")
    commands = parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="index mesh files (needs GMVIT_API_KEY)")
    add.add_argument("files", nargs="+", help="mesh files")
    add.add_argument("--label", help="the class of every file added")
    add.add_argument("--name", help="a name (only with one file; default: the file name)")
    add_client_arguments(add)
    add.set_defaults(func=run_add)

    remove = commands.add_parser("rm", help="remove shapes by id (needs GMVIT_API_KEY)")
    remove.add_argument("ids", nargs="+", type=int, help="shape ids")
    add_client_arguments(remove)
    remove.set_defaults(func=run_rm)

    listing = commands.add_parser("ls", help="list indexed shapes")
    listing.add_argument("--label", help="only shapes with this label")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=50)
    add_client_arguments(listing)
    listing.set_defaults(func=run_ls)


def run_add(args: argparse.Namespace) -> int:
    if args.name and len(args.files) > 1:
        raise CLIError("--name names one shape: give one file with it")
    client = Client.from_args(args)
    answers = []
    for path in tqdm(args.files, desc="index add", unit="file", disable=len(args.files) < 2):
        answer = client.upload(path, "/shapes", {"label": args.label, "name": args.name})
        answers.append(answer)
        if not args.json:
            note = " (already indexed)" if answer["duplicate"] else ""
            tqdm.write(f"{answer['id']}\t{path}{note}")
    if args.json:
        print_json(answers)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    for shape_id in args.ids:
        client.call("DELETE", f"/shapes/{shape_id}")
        if not args.json:
            print(f"removed {shape_id}")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    params = {"offset": args.offset, "limit": args.limit}
    if args.label:
        params["label"] = args.label
    page = Client.from_args(args).call("GET", "/shapes", params=params)
    if args.json:
        print_json(page)
        return 0
    for shape in page["shapes"]:
        print(f"{shape['id']}\t{shape['label'] or '-'}\t{shape['source']}\t{shape['name']}")
    shown = len(page["shapes"])
    print(f"{page['offset'] + 1 if shown else 0}-{page['offset'] + shown} of {page['total']}")
    return 0
