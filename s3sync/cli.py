"""The command line: click parsing, the config file as defaults, and the only exit."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from s3sync import __version__, api, config, headers
from s3sync.errors import ConfigError, ExitCode, S3SyncError
from s3sync.model import MAX_REQUESTS, Report
from s3sync.progress import ConsoleReporter, summary_line


def _size(_ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    try:
        return config.parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


MIB = 1024 * 1024


def _part_size(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    """A SIZE callback held within S3's limits for a part: 5 MiB (all but the last
    part) to 5 GiB."""
    size = _size(ctx, param, value)
    if not 5 * MIB <= size <= 5 * 1024 * MIB:
        raise click.BadParameter(f"{size} bytes is not within 5MiB..5GiB (S3's part sizes)")
    return size


def _threshold(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    """A SIZE callback for --multipart-threshold: at least a byte (an empty file is one
    PutObject, never an upload of no parts), at most 5 GiB (S3's largest PutObject)."""
    size = _size(ctx, param, value)
    if not 1 <= size <= 5 * 1024 * MIB:
        raise click.BadParameter(f"{size} bytes is not within 1..5GiB (S3's PutObject sizes)")
    return size


class _Finite(click.FloatRange):
    """A FloatRange that refuses nan and infinity (every comparison with nan is false,
    so a range alone lets it through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class _OrderedRulesCommand(click.Command):
    """Keeps --include/--exclude in command-line order: the first matching rule wins."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rules: list[tuple[bool, str]] = []
        it = iter(args)
        for arg in it:
            if arg == "--":
                break
            for flag, include in (("--include", True), ("--exclude", False)):
                if arg == flag:
                    rules.append((include, next(it, "")))
                elif arg.startswith(flag + "="):
                    rules.append((include, arg[len(flag) + 1 :]))
        ctx.meta["s3sync.rules"] = tuple(rules)
        return super().parse_args(ctx, args)


class _UsageProblem(click.ClickException):
    """A usage or config error told in one line, exit 2."""

    exit_code = ExitCode.USAGE


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        defaults = config.load(value, command=ctx.info_name or "")
    except ConfigError as exc:
        raise _UsageProblem(str(exc)) from None
    if "json" in defaults:
        defaults["as_json"] = defaults.pop("json")
    ctx.meta["s3sync.header_rules"] = defaults.pop("header_rules", ())
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


SIGNAL_GRACE = 10.0  # seconds a run may take to finish what is in flight after a signal


def _on_signals(cancel: threading.Event) -> None:
    """First SIGINT/SIGTERM: finish what is in flight, then stop (at once after
    SIGNAL_GRACE seconds). Second: stop at once."""

    def stop_now(why: bytes) -> None:
        os.write(2, why)
        os._exit(ExitCode.INTERRUPTED)

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if cancel.is_set():
            stop_now(b"s3sync: interrupted again, stopping now\n")
        cancel.set()
        # a request in flight to a silent server would hold the run for its timeout
        grace = threading.Timer(
            SIGNAL_GRACE, stop_now, (b"s3sync: requests still in flight, stopping now\n",)
        )
        grace.daemon = True
        grace.start()
        if sys.stderr.isatty():
            os.write(
                2, b"s3sync: interrupted, finishing requests in flight (again to stop at once)\n"
            )

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="s3sync")
def main() -> None:
    """Mirror a directory tree into S3 and back, in parallel."""


def run() -> None:
    """The ``s3sync`` command (and ``python -m s3sync``): run ``main``, then leave at once.

    By the time a command returns, all it wrote is flushed and closed: the index
    committed, the log file closed, the lock released, every worker joined. The
    interpreter's teardown of every module and object would only add about 30 ms to
    each run, a tenth of a no-op push with an index; so flush the standard streams and
    exit with the code, as ``sys.exit`` would have.
    """
    try:
        main()
        status: object = 0
    except SystemExit as leaving:
        status = leaving.code
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to keep
            stream.flush()
    os._exit(status)


EXIT_CODES = """\b
Exit codes: 0 done, 1 some actions failed, 2 usage or config error,
3 fatal (nothing changed), 4 locked, 5 deletes withheld, 130 interrupted.
"""

PUSH_EXAMPLES = (
    """\b
Examples:
  s3sync push ./site s3://www.example.com
  s3sync push -n -v ./site s3://bucket/prefix        # show what would change
  s3sync push --exclude '*.tmp' --exclude '.git/' ./site s3://bucket
  s3sync push --endpoint-url http://127.0.0.1:8333 ./site s3://bucket
  s3sync push --config s3sync.toml --json ./site s3://bucket > run.jsonl
  s3sync push --gzip -g --cloudfront E2QWRUHAPOMQZL ./public s3://www.example.com
  s3sync push -q --lock /tmp/site.lock --index ~/.cache/site.idx \\
      --log-file /var/log/s3sync.log ./site s3://bucket          # from cron

"""
    + EXIT_CODES
)

RESTORE_EXAMPLES = (
    """\b
Examples:
  s3sync restore s3://www.example.com ./site
  s3sync restore -n -v s3://bucket/prefix ./site     # show what would change
  s3sync restore --delete s3://bucket/prefix ./site  # also remove files not in the bucket

"""
    + EXIT_CODES
)


def _connection_options() -> list[Callable[[Any], Any]]:
    """Return the options that say where S3 is and how hard to try, for every command."""
    return [
        click.option(
            "--endpoint-url", metavar="URL", help="S3 endpoint, for S3-compatible servers."
        ),
        click.option("--region", help="AWS region (default: the profile's, else us-east-1)."),
        click.option("--profile", help="AWS profile from ~/.aws/config."),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=4,
            show_default=True,
            help="Retries of a failed request (throttling, 5xx, timeouts, resets).",
        ),
        click.option(
            "--no-verify-ssl",
            "verify_ssl",
            is_flag=True,
            flag_value=False,
            default=True,
            help="Do not verify the server's TLS certificate (traffic stays encrypted). "
            "AWS_CA_BUNDLE or the profile's ca_bundle names a private CA instead.",
        ),
        click.option(
            "--timeout",
            type=_Finite(0.1, 3600),
            default=60.0,
            show_default=True,
            metavar="SECONDS",
            help="How long a request may wait for the server before it is retried.",
        ),
    ]


def _common(command: Any) -> Any:
    """Add the options every command shares, outermost last."""
    options = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            is_eager=True,
            expose_value=False,
            callback=_load_config,
            help="TOML file giving defaults for these options; flags win.",
        ),
        click.option(
            "-w",
            "--workers",
            type=click.IntRange(1, 512),
            default=16,
            show_default=True,
            help="Worker threads: reading, hashing, large files and their parts.",
        ),
        click.option(
            "--max-requests",
            type=click.IntRange(1, 4096),
            default=MAX_REQUESTS,
            show_default=True,
            metavar="N",
            help="Most small transfers in flight at once; lower it on a shared link.",
        ),
        click.option(
            "-n", "--dry-run", is_flag=True, help="Show what would be done; change nothing."
        ),
        click.option(
            "--include",
            multiple=True,
            metavar="PATTERN",
            help="Include paths matching PATTERN (repeatable; first match wins).",
        ),
        click.option(
            "--exclude",
            multiple=True,
            metavar="PATTERN",
            help="Exclude paths matching PATTERN (repeatable; first match wins).",
        ),
        *_connection_options(),
        click.option(
            "--compare",
            type=click.Choice(["mtime", "checksum", "size"]),
            help="What makes a file differ: times (cheap), content, or size only. "
            "[default: mtime; checksum for copy]",
        ),
        click.option("--force", is_flag=True, help="Transfer every file, changed or not."),
        click.option(
            "--ignore-existing", is_flag=True, help="Transfer only files missing on the other side."
        ),
        click.option(
            "--limit",
            type=click.IntRange(0),
            metavar="N",
            help="Stop after planning N transfers (with -n: a first look).",
        ),
        click.option("--lock", metavar="PATH", help="Lock file: exit 4 if another run holds it."),
        click.option(
            "--allow-empty-source",
            is_flag=True,
            help="Delete even when the source is missing or empty.",
        ),
        click.option(
            "--max-delete",
            metavar="N|N%",
            help="Withhold all deletes (exit 5) if more than N, or N% of the files.",
        ),
        click.option(
            "--log-file", metavar="PATH", help="Append timestamped actions and errors here."
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Write one JSON object per action and a summary to stdout.",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Print every action with its reason."),
        click.option("-q", "--quiet", is_flag=True, help="Print errors only."),
        click.option("--debug", is_flag=True, help="Show tracebacks of internal errors."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run(
    ctx: click.Context,
    name: str,
    call: Any,
    *,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    as_json: bool,
    verbose: bool,
    quiet: bool,
    debug: bool,
    **options: Any,
) -> None:
    """Run one command through the API with the console reporter; exit with its code."""
    rules = ctx.meta.get("s3sync.rules") or api.filter_rules(include, exclude)
    reporter = ConsoleReporter(
        verbosity=-1 if quiet else (1 if verbose else 0),
        as_json=as_json,
        bar=sys.stderr.isatty(),
    )
    cancel = threading.Event()
    _on_signals(cancel)
    try:
        report = call(
            filters=rules, reporter=reporter, keep_actions=False, cancel=cancel, **options
        )
    except S3SyncError as exc:
        click.echo(f"s3sync {name}: {exc}", err=True)
        ctx.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(f"s3sync {name}: interrupted", err=True)
        ctx.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if debug:
            import traceback  # here: loading it costs every run a millisecond and more

            traceback.print_exc()
        click.echo(f"s3sync {name}: internal error: {exc!r} (--debug shows where)", err=True)
        ctx.exit(ExitCode.PARTIAL)
    ctx.exit(report.exit_code)


@main.command(cls=_OrderedRulesCommand, epilog=PUSH_EXAMPLES)
@click.argument("src", metavar="SRC_DIR")
@click.argument("dest", metavar="s3://BUCKET[/PREFIX]")
@_common
@click.option(
    "-f",
    "--fudge",
    type=_Finite(0, 10 * 365 * 86400),
    default=1200.0,
    show_default=True,
    metavar="SECONDS",
    help="Clock fudge factor of the change rule (see README).",
)
@click.option("-D", "--no-delete", is_flag=True, help="Keep objects that have no local file.")
@click.option(
    "--follow-symlinks/--no-follow-symlinks",
    default=True,
    show_default=True,
    help="Upload what symlinks point to, or skip symlinks.",
)
@click.option(
    "--multipart-threshold",
    default="8MiB",
    callback=_threshold,
    metavar="SIZE",
    show_default=True,
    help="Files this large or larger go up as multipart uploads.",
)
@click.option(
    "--part-size",
    default="8MiB",
    callback=_part_size,
    metavar="SIZE",
    show_default=True,
    help="Part size of multipart uploads.",
)
@click.option(
    "--index",
    metavar="PATH",
    help="Local index of what was uploaded: trusted instead of listing the bucket.",
)
@click.option(
    "--ignore-index", is_flag=True, help="List the bucket anyway and rebuild the --index."
)
@click.option(
    "--lock-s3",
    metavar="KEY",
    help="Lease object in the bucket: one run at a time across machines (exit 4).",
)
@click.option(
    "--content-type",
    metavar="TYPE",
    help="Content-Type of every file, instead of one chosen by name and content.",
)
@click.option(
    "--header",
    multiple=True,
    metavar='"NAME: VALUE"',
    help="Send this header with every file (repeatable); [[rules]] in --config set them per path.",
)
@click.option(
    "--gzip",
    is_flag=True,
    help="Compress text files (html, css, js, json, svg, xml, txt, ...) and send them with "
    "Content-Encoding: gzip; gzip = true/false in [[rules]] switches it per path.",
)
@click.option(
    "-g",
    "--generate-index-html",
    is_flag=True,
    help="Give every directory without an index.html a generated listing page.",
)
@click.option(
    "--cloudfront",
    multiple=True,
    metavar="DISTRIBUTION_ID",
    help="After a successful push, invalidate the paths of updated and deleted objects "
    "on this CloudFront distribution (repeatable).",
)
@click.option(
    "--invalidation-budget",
    type=click.IntRange(1, 3000),
    default=8,
    show_default=True,
    metavar="N",
    help="Invalidate at most N paths: more collapse into wildcards (/dir/*, at last /*).",
)
@click.option(
    "--order",
    multiple=True,
    metavar="GLOBS",
    help="Upload files matching GLOBS (comma-separated) after all others, one group per "
    "option, in order. [default: pages and entry points last]",
)
@click.pass_context
def push(ctx: click.Context, /, src: str, dest: str, **options: Any) -> None:
    """Upload SRC_DIR to s3://BUCKET[/PREFIX]: what is new or changed goes up, and objects
    with no local file are deleted (after all uploads, and only if nothing failed).

    A file is uploaded when its key is missing, its size differs, or its mtime is later
    than the object's LastModified minus --fudge seconds.
    """
    rules = ctx.meta.get("s3sync.header_rules", ())
    _run(ctx, "push", lambda **kw: api.push(src, dest, header_rules=rules, **kw), **options)


@main.command(cls=_OrderedRulesCommand, epilog=RESTORE_EXAMPLES)
@click.argument("src", metavar="s3://BUCKET[/PREFIX]")
@click.argument("dest", metavar="DEST_DIR")
@_common
@click.option(
    "--delete", is_flag=True, help="Remove local files that have no object (after a clean run)."
)
@click.pass_context
def restore(ctx: click.Context, /, src: str, dest: str, **options: Any) -> None:
    """Download s3://BUCKET[/PREFIX] into DEST_DIR: what is missing or different comes
    down, each file with its original mtime; with --delete, files that have no object go.

    Keys that would land outside DEST_DIR are refused; nothing is written through a
    symlink; every file is written under a temporary name and renamed into place.
    """
    _run(ctx, "restore", lambda **kw: api.restore(src, dest, **kw), **options)


COPY_EXAMPLES = (
    """\b
Examples:
  s3sync copy s3://old-bucket/site s3://new-bucket            # new-bucket/site/...
  s3sync copy 's3://old-bucket/site/*' s3://new-bucket/www     # new-bucket/www/...
  s3sync copy --delete s3://a/data s3://b/mirror              # exact mirror
  s3sync copy --source-endpoint-url http://127.0.0.1:8333 s3://a s3://b

"""
    + EXIT_CODES
)


@main.command(cls=_OrderedRulesCommand, epilog=COPY_EXAMPLES)
@click.argument("src", metavar="s3://SRC_BUCKET[/PREFIX][/*]")
@click.argument("dest", metavar="s3://DST_BUCKET[/PREFIX]")
@_common
@click.option(
    "--delete",
    is_flag=True,
    help="Delete destination objects missing from the source (after a clean run).",
)
@click.option(
    "-f",
    "--fudge",
    type=_Finite(0, 10 * 365 * 86400),
    default=1200.0,
    show_default=True,
    metavar="SECONDS",
    help="Clock fudge factor of --compare mtime.",
)
@click.option(
    "--multipart-threshold",
    default="8MiB",
    callback=_threshold,
    metavar="SIZE",
    show_default=True,
    help="Objects this large or larger are copied in parts.",
)
@click.option(
    "--part-size",
    default="8MiB",
    callback=_part_size,
    metavar="SIZE",
    show_default=True,
    help="Part size of multipart copies.",
)
@click.option(
    "--source-endpoint-url",
    metavar="URL",
    help="Endpoint of the source, when it is not the destination's.",
)
@click.option("--source-region", help="Region of the source.")
@click.option("--source-profile", help="AWS profile with the source's credentials.")
@click.option(
    "--allow-overlap",
    is_flag=True,
    help="Copy even when the destination lies inside the source (or around it, with "
    "--delete) in one bucket.",
)
@click.pass_context
def copy(ctx: click.Context, /, src: str, dest: str, **options: Any) -> None:
    """Copy s3://SRC_BUCKET[/PREFIX] to s3://DST_BUCKET[/PREFIX] without downloading:
    what is missing or different (size and ETag) is copied server-side, keeping headers and
    metadata; with --delete, destination objects missing from the source go.

    Like cp -r, s3://b/dir copies dir itself; s3://b/dir/* copies what is in it. With a
    --source-* option the bytes stream through this machine in parts.
    """
    _run(ctx, "copy", lambda **kw: api.copy(src, dest, **kw), **options)


def _stream_options(command: Any) -> Any:
    """Add the options pipe and cat share."""
    options = [
        click.option(
            "-w",
            "--workers",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            help="Parts in flight (and in memory) at once.",
        ),
        click.option(
            "--part-size",
            default="8MiB",
            callback=_part_size,
            metavar="SIZE",
            show_default=True,
            help="Part size, 5MiB to 5GiB.",
        ),
        *_connection_options(),
        click.option("-v", "--verbose", is_flag=True, help="Print a summary line on stderr."),
        click.option("--debug", is_flag=True, help="Show tracebacks of internal errors."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _finish_stream(
    ctx: click.Context, name: str, call: Callable[[], Report], *, verbose: bool, debug: bool
) -> None:
    """Run a stream command; one line on stderr for errors (and with -v, the summary)."""
    try:
        report = call()
    except S3SyncError as exc:
        click.echo(f"s3sync {name}: {exc}", err=True)
        ctx.exit(exc.exit_code)
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        click.echo(f"s3sync {name}: interrupted", err=True)
        ctx.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if debug:
            import traceback  # here: loading it costs every run a millisecond and more

            traceback.print_exc()
        click.echo(f"s3sync {name}: internal error: {exc!r} (--debug shows where)", err=True)
        ctx.exit(ExitCode.PARTIAL)
    for problem in report.errors:
        click.echo(f"s3sync {name}: {problem.path}: {problem.message}", err=True)
    if report.interrupted:
        click.echo(f"s3sync {name}: interrupted; nothing was stored", err=True)
    elif verbose:
        click.echo(summary_line(report, name), err=True)
    ctx.exit(report.exit_code)


@main.command(
    epilog="""\\b
Examples:
  tar czf - ./site | s3sync pipe s3://backups/site.tgz
  pg_dump db | s3sync pipe --content-type application/sql s3://backups/db.sql

"""
    + EXIT_CODES
)
@click.argument("dest", metavar="s3://BUCKET/KEY")
@_stream_options
@click.option("--content-type", metavar="TYPE", help="Content-Type of the object.")
@click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="User metadata (repeatable).")
@click.pass_context
def pipe(
    ctx: click.Context,
    /,
    dest: str,
    content_type: str | None,
    metadata: tuple[str, ...],
    verbose: bool,
    debug: bool,
    **options: Any,
) -> None:
    """Store standard input, read to its end, as one object: a multipart upload with
    parallel parts and bounded memory. On failure or Ctrl-C the upload is aborted and
    nothing appears under the key.
    """
    try:
        pairs = dict(headers.metadata_pair(item) for item in metadata)
        if content_type is not None:
            headers.header_value(content_type, "--content-type")
    except ConfigError as exc:
        raise _UsageProblem(str(exc)) from None
    cancel = threading.Event()
    _on_signals(cancel)
    _finish_stream(
        ctx,
        "pipe",
        lambda: api.pipe(
            dest,
            sys.stdin.buffer,
            content_type=content_type,
            metadata=pairs,
            cancel=cancel,
            **options,
        ),
        verbose=verbose,
        debug=debug,
    )


@main.command(
    epilog="""\\b
Examples:
  s3sync cat s3://backups/site.tgz | tar xzf -
  s3sync cat s3://bucket/big.log | grep ERROR

"""
    + EXIT_CODES
)
@click.argument("src", metavar="s3://BUCKET/KEY")
@_stream_options
@click.pass_context
def cat(ctx: click.Context, /, src: str, verbose: bool, debug: bool, **options: Any) -> None:
    """Write one object to standard output, in order, from parallel ranged GETs, with
    bounded memory; its size, and its MD5 where the ETag allows, are checked.
    """
    out = sys.stdout.buffer
    cancel = threading.Event()
    _on_signals(cancel)
    try:
        _finish_stream(
            ctx,
            "cat",
            lambda: api.cat(src, out, cancel=cancel, **options),
            verbose=verbose,
            debug=debug,
        )
    except BrokenPipeError:  # the reader stopped early (| head): not our failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        ctx.exit(ExitCode.OK)
