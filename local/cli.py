"""``tracklane``: the developer and admin command line.

tracklane run [--fresh]               start the local stack (what ``make run`` does); --fresh: empty store
tracklane token --user NAME           print a bearer token the local API accepts
tracklane token --aws --user EMAIL [--create] [--stack NAME | --user-pool-id ID --client-id ID]
                                      print an access token from a deployed stack's user pool
tracklane smoke [--api URL --token T] run intent -> PUT -> finalize -> ready -> stream, PASS/FAIL per step
tracklane upload FILE... [--album NAME] [--title T]... [--tags a,b] [--visibility V] [--json]
                                      upload audio, resumably, and follow it to ready (docs/cli.md)
tracklane entitlement grant|revoke|clear|show USER [--reason TEXT] [--aws]
tracklane quota set USER SIZE | clear USER | show USER [--aws]
                                      an artist's storage quota (docs/limits.md)

Commands that talk to the local stack find it through the state file ``make run`` writes
(``.tracklane/stack.json``); ``MOTO_PORT`` overrides it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from local.config import local_settings
from local.running_stack import NoLocalStack, locate


class CommandFailed(Exception):
    """A command cannot go on; its message is the one line printed instead of a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _token(args: argparse.Namespace) -> int:
    if args.aws:
        return _aws_token(args)
    from local.devauth import DevKeys, mint

    try:
        token = mint(args.user, DevKeys(local_settings().dev_key_file), ttl_s=args.ttl)
    except ValueError as refused:
        raise CommandFailed(f"tracklane token: refusing to mint a token: {refused}") from None
    print(token)
    return 0


def _aws_token(args: argparse.Namespace) -> int:
    from local import aws_token

    try:
        if args.user_pool_id and args.client_id:
            pool = aws_token.UserPool(args.user_pool_id, args.client_id)
        else:
            pool = aws_token.from_stack(args.stack)
        print(aws_token.access_token(pool, args.user, create=args.create))
    except aws_token.TokenUnavailable as unavailable:
        raise CommandFailed(f"tracklane token --aws: {unavailable}") from None
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from local.smoke import Smoke

    api, token = args.api, args.token
    if api is None:
        try:
            api = locate(local_settings()).api_url
        except NoLocalStack as missing:
            raise CommandFailed(f"tracklane smoke: {missing}; start it with `make run` or pass --api") from None
    if token is None:
        if args.api is not None:
            raise CommandFailed("tracklane smoke: --token is required with --api (see `tracklane token --aws`)")
        from local.devauth import DevKeys, mint

        token = mint(args.user, DevKeys(local_settings().dev_key_file))
    smoke = Smoke(api, token, timeout_s=args.timeout, keep=args.keep, out=sys.stdout)
    passed = smoke.run()
    print("smoke: PASS" if passed else "smoke: FAIL", file=sys.stdout)
    return 0 if passed else 1


def _upload(args: argparse.Namespace) -> int:
    from client.api import Api
    from client.command import Options, UsageError, parse_size, run
    from client.results import EXIT_INTERRUPTED, EXIT_USAGE

    api, token = args.api, args.token or os.environ.get("TRACKLANE_TOKEN") or None
    if api is None:
        try:
            api = locate(local_settings()).api_url
        except NoLocalStack as missing:
            raise CommandFailed(
                f"tracklane upload: {missing}; start it with `make run` or pass --api", EXIT_USAGE
            ) from None
        if token is None:
            from local.devauth import DevKeys, mint

            token = mint(args.user, DevKeys(local_settings().dev_key_file))
    elif token is None:
        raise CommandFailed(
            "tracklane upload: --token or TRACKLANE_TOKEN is required with --api (see `tracklane token --aws`)",
            EXIT_USAGE,
        )
    try:
        options = Options(
            files=args.files,
            album=args.album,
            titles=args.title or [],
            tags=[tag.strip() for given in args.tags or [] for tag in given.split(",") if tag.strip()],
            visibility=args.visibility,
            json=args.json,
            multipart_threshold=parse_size(args.multipart_threshold) if args.multipart_threshold else None,
            part_size=parse_size(args.part_size) if args.part_size else None,
            parallel=args.parallel,
            timeout_s=args.timeout,
            restart=args.new,
            state_dir=args.state_dir,
            stop_after_parts=args.stop_after_parts,
        )
    except ValueError as bad:
        raise CommandFailed(f"tracklane upload: {bad}", EXIT_USAGE) from None
    client = Api(api, token)
    try:
        return run(options, client)
    except UsageError as bad:
        raise CommandFailed(f"tracklane upload: {bad}", EXIT_USAGE) from None
    except KeyboardInterrupt:
        # Before any file was under way (run() takes Ctrl-C itself once one is).
        raise CommandFailed("tracklane upload: interrupted", EXIT_INTERRUPTED) from None
    finally:
        client.close()


def _use_local_stack(*, otherwise: str = "") -> None:
    """Points ``functions.settings`` at the running local stack's moto (``otherwise`` names the
    command's alternative to a local stack in the message when there is none)."""
    try:
        stack = locate(local_settings())
    except NoLocalStack as missing:
        raise CommandFailed(f"tracklane: {missing}; start it with `make run`{otherwise}") from None
    # moto keeps its tables per region: the stack's, whatever this shell's AWS_REGION says.
    os.environ.update({"TRACKLANE_AWS_ENDPOINT_URL": stack.moto_endpoint, "AWS_REGION": stack.region})
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(name, value)


def _entitlement(args: argparse.Namespace) -> int:
    # Against the local stack's moto unless --aws: then the normal AWS credential chain and
    # TRACKLANE_ENTITLEMENTS_TABLE (the deployed table's name) apply.
    from functions.api.auth import subject_problem

    problem = subject_problem(args.user)
    if problem is not None:
        raise CommandFailed(f"tracklane entitlement: the user id {problem}")
    if not args.aws:
        _use_local_stack(otherwise=" (or pass --aws for the deployed table)")
    from functions.domain.catalog import entitlements

    by = os.environ.get("USER", "admin")
    if args.action == "grant":
        result = entitlements.set_entitlement(args.user, allowed=True, by=by, reason=args.reason)
    elif args.action == "revoke":
        result = entitlements.set_entitlement(args.user, allowed=False, by=by, reason=args.reason)
    elif args.action == "clear":
        result = entitlements.clear(args.user)
    else:
        result = entitlements.lookup(args.user)
    print(
        json.dumps(
            {"user": result.user_id, "allowed": result.allowed, "source": result.source, "reason": result.reason}
        )
    )
    return 0


def _quota(args: argparse.Namespace) -> int:
    # As ``entitlement``: the local stack's moto unless --aws (then TRACKLANE_ARTISTS_TABLE names
    # the deployed table).
    from client.command import parse_size
    from functions.api.auth import subject_problem

    problem = subject_problem(args.user)
    if problem is not None:
        raise CommandFailed(f"tracklane quota: the user id {problem}")
    if args.action == "set":
        if args.size is None:
            raise CommandFailed("tracklane quota set: give the quota, e.g. 20GiB or 21474836480")
        try:
            size = parse_size(args.size)
        except ValueError as bad:
            raise CommandFailed(f"tracklane quota set: {bad}") from None
    if not args.aws:
        _use_local_stack(otherwise=" (or pass --aws for the deployed table)")
    from functions.domain.catalog import usage

    by = os.environ.get("USER", "admin")
    if args.action == "set":
        result = usage.set_quota(args.user, size, by=by)
    elif args.action == "clear":
        result = usage.set_quota(args.user, None, by=by)
    else:
        result = usage.of(args.user)
    print(
        json.dumps(
            {
                "user": args.user,
                "quotaBytes": result.quota_bytes,
                "source": result.quota_source,
                "usedBytes": result.used_bytes,
                "reservedBytes": result.reserved_bytes,
                "trackCount": result.track_count,
                "pendingIntents": result.pending_intents,
            }
        )
    )
    return 0


def _add_quota(commands: Any) -> None:
    quota = commands.add_parser("quota", help="set, clear or show an artist's storage quota")
    quota.add_argument("action", choices=["set", "clear", "show"])
    quota.add_argument("user")
    quota.add_argument("size", nargs="?", help="with set: bytes, or e.g. 20GiB, 500MB")
    quota.add_argument("--aws", action="store_true", help="act on the deployed table instead of the local stack")
    quota.set_defaults(func=_quota)


def _run(args: argparse.Namespace) -> int:
    from local.stack import run as run_stack

    run_stack(fresh=args.fresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tracklane", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="print a bearer token for the local API (or, with --aws, a deployment)")
    token.add_argument("--user", required=True, help="the user id (JWT sub) to act as; with --aws the user's email")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds the token is valid (default 12 h)")
    token.add_argument("--aws", action="store_true", help="sign in to a deployed stack's Cognito user pool")
    token.add_argument("--create", action="store_true", help="with --aws: create the user if it does not exist")
    token.add_argument(
        "--stack",
        default="Tracklane-dev",
        help="with --aws: the stack whose outputs name the pool (default Tracklane-dev)",
    )
    token.add_argument("--user-pool-id", help="with --aws: the pool, instead of reading the stack's outputs")
    token.add_argument("--client-id", help="with --aws: the app client, instead of reading the stack's outputs")
    token.set_defaults(func=_token)

    smoke = commands.add_parser("smoke", help="run the upload flow end to end and print PASS/FAIL per step")
    smoke.add_argument("--api", help="the API's base URL (default: the running local stack)")
    smoke.add_argument("--token", help="a bearer token (default against the local stack: a dev token)")
    smoke.add_argument("--user", default="smoke", help="the local dev token's user (default smoke)")
    smoke.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for ready (default 300)")
    smoke.add_argument("--keep", action="store_true", help="keep the track instead of deleting it")
    smoke.set_defaults(func=_smoke)

    upload = commands.add_parser(
        "upload",
        help="upload audio files (resumable, in parts when large) and follow them to ready",
        description="Upload audio files and follow their processing; see docs/cli.md.",
    )
    upload.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files, in album order")
    upload.add_argument("--album", help="the album's name: several files become one album in argument order")
    upload.add_argument("--title", action="append", help="a title per file, in file order (default: the file name)")
    upload.add_argument("--tags", action="append", help="comma-separated tags for every file (repeatable)")
    upload.add_argument("--visibility", choices=["public", "unlisted", "private"], help="default public")
    upload.add_argument("--api", help="the API's base URL (default: the running local stack)")
    upload.add_argument("--token", help="a bearer token (default: $TRACKLANE_TOKEN; locally a dev token)")
    upload.add_argument("--user", default="artist", help="the local dev token's user (default artist)")
    upload.add_argument("--json", action="store_true", help="no bars; one JSON object per file on stdout")
    upload.add_argument("--multipart-threshold", metavar="SIZE", help="send larger files in parts (default 32MiB)")
    upload.add_argument("--part-size", metavar="SIZE", help="the part size to ask for (default: the API's)")
    upload.add_argument("--parallel", type=int, default=4, help="parts (or album files) in flight (default 4)")
    upload.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for a verdict per file")
    upload.add_argument("--new", action="store_true", help="ignore saved state: start every upload over")
    upload.add_argument("--state-dir", type=Path, help="where resume state lives (default ~/.cache/tracklane)")
    # Tests: stop like Ctrl-C once this many parts are stored, to prove a rerun resumes.
    upload.add_argument("--stop-after-parts", type=int, help=argparse.SUPPRESS)
    upload.set_defaults(func=_upload)

    entitlement = commands.add_parser("entitlement", help="grant, revoke, clear or show a user's upload entitlement")
    entitlement.add_argument("action", choices=["grant", "revoke", "clear", "show"])
    entitlement.add_argument("user")
    entitlement.add_argument("--reason")
    entitlement.add_argument("--aws", action="store_true", help="act on the deployed table instead of the local stack")
    entitlement.set_defaults(func=_entitlement)

    _add_quota(commands)

    run = commands.add_parser("run", help="start the local stack in the foreground")
    run.add_argument(
        "--fresh", action="store_true", help="delete the kept tables and objects first (TRACKLANE_DATA_DIR)"
    )
    run.set_defaults(func=_run)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CommandFailed as failure:
        print(failure, file=sys.stderr)
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
