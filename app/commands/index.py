"""`gmvit index {add,rm,ls}`: manage the shapes of a running server; `gmvit index
{check,repair}`: verify and repair the index files of this machine's data dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from app.cli import CLIError
from app.client import Client, add_client_arguments, print_json
from index.check import GIVE_UP, check_index, model_dirs, repair_index


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="add, remove and list indexed shapes; check and repair the index files"
    )
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

    check = commands.add_parser(
        "check",
        help="verify the index files under GMVIT_DATA_DIR (exit 1 if damaged)",
        description="Verify every model's index under GMVIT_DATA_DIR/index: every shape has "
        "its descriptor and every descriptor its shape, the snapshot's checksum holds and it "
        "agrees with the log, the log reads intact. Safe beside a running server.",
    )
    check.set_defaults(func=run_check)

    repair = commands.add_parser(
        "repair",
        help="make a damaged index open again, giving up only what you name",
        description="Rewrite the log and snapshot of a model's live generation from what "
        "verifies. Shapes or descriptors that are really lost are given up only with "
        "--give-up; a damaged CURRENT is pointed at --generation.",
    )
    repair.add_argument("--model", help="the model id (default: the only one there is)")
    repair.add_argument("--generation", help="point a damaged CURRENT at this generation")
    repair.add_argument(
        "--give-up",
        action="append",
        default=[],
        choices=sorted(GIVE_UP),
        help="; ".join(f"{name}: {what}" for name, what in GIVE_UP.items()),
    )
    repair.set_defaults(func=run_repair)


def _index_root() -> Path:
    from app.settings import load_settings

    return load_settings().index_root


def run_check(args: argparse.Namespace) -> int:
    root = _index_root()
    found = model_dirs(root)
    if not found:
        raise CLIError(f"no index under {root} (GMVIT_DATA_DIR)")
    damaged = 0
    for model_dir in found:
        report = check_index(model_dir)
        state = "ok" if report.ok else "DAMAGED"
        print(f"{state}\t{report.model_id}\t{report.generation or '-'}\t{report.shapes} shapes")
        for problem in report.problems:
            print(f"  problem: {problem}")
        for note in report.notes:
            print(f"  note: {note}")
        damaged += not report.ok
    return 1 if damaged else 0


def run_repair(args: argparse.Namespace) -> int:
    found = {(d / "MODEL").read_text().strip(): d for d in model_dirs(_index_root())}
    if args.model is None and len(found) != 1:
        raise CLIError(f"name the index with --model: one of {', '.join(found) or 'none'}")
    model_dir = found.get(args.model) if args.model else next(iter(found.values()))
    if model_dir is None:
        raise CLIError(f"no index for model {args.model!r}: one of {', '.join(found)}")
    for action in repair_index(model_dir, generation=args.generation, give_up=set(args.give_up)):
        print(action)
    return 0


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
