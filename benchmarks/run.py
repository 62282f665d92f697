"""``make bench``: every phase for s3sync and each installed peer, interleaved, against one
local SeaweedFS; prints the tables README.rst shows and writes the figures as JSON.

    python -m benchmarks.run [--quick] [--files N] [--tiny N] [--large-mib N] [--only NAMES]
                             [--links http/0,https/80,...] [--network-files N]

Two suites. The loopback suite reaches the server directly over plain HTTP, where the
client's CPU decides. The network suite runs the website phases again over each link
(``benchmarks/links.py``): plain HTTP or TLS (a second gateway with a private CA made
here, each tool given the CA), through a proxy that adds round-trip latency and counts
the connections each tool holds open at once.

Each tool works on its own prefix of one bucket and its own restore directory; within a
phase the tools run one after another, so they share the machine's state, and each run
starts once the server is idle. Figures are
the client's: wall time, CPU seconds (user + system, children included), peak RSS, and
the S3 requests the server counted.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import links, trees
from benchmarks.peers import Argv, Peer, peers
from tools import seaweed, servers

BUCKET = "bench"
REPEAT = 5  # turns each tool takes at a no-op phase of the website tree
QUIET = 600.0  # seconds a run keeps from the end of the last one's cleanup
CLEANED = Path(__file__).resolve().parent.parent / ".bench" / "cleaned"


@dataclass(frozen=True)
class Figure:
    """One tool's run of one phase."""

    phase: str
    tool: str
    files: int
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    exit_code: int
    link: str = ""  # SCHEME/RTT of the network suite; "" on loopback, no proxy
    peak: int = 0  # the most connections the tool held open at once (network suite)

    @property
    def cpu_ms_per_file(self) -> float:
        return 1000 * self.cpu / self.files if self.files else 0.0


def busy_seconds(stat: str | None = None) -> float:
    """Return the CPU time all of this machine's cores have spent busy, from the first
    line of /proc/stat (or *stat*): user, nice, system, irq and softirq. Not idle, not
    I/O wait, and not steal: a neighbour on the host is nothing a wait would end."""
    line = (stat if stat is not None else Path("/proc/stat").read_text()).split("\n", 1)[0]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, line.split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def settle(
    *,
    window: float = 0.5,
    busy: float = 0.1,
    most: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    used: Callable[[], float] = busy_seconds,
) -> float:
    """Wait until the machine is idle: all its cores together busy under *busy* of one
    core over *window* seconds (or *most* seconds have passed); return the seconds
    waited.

    After a burst of writes SeaweedFS keeps a core busy for a while (flushes,
    compaction), and so may anything else on the machine: the next tool would share
    it, and pay for the work of another. On these 2 cores a no-op push with an index
    measured 0.13 s on a quiet machine, and 0.15 to 0.17 s in full runs that only
    waited for the server."""
    started = clock()
    while clock() - started < most:
        before = used()
        sleep(window)
        if used() - before < busy * window:
            break
    return clock() - started


# Runs one tool from a small process. The kernel carries a process's peak RSS across
# exec, so a tool started by this process (vfork and exec) would report at least this
# process's own peak, which grows to tens of MB as trees are generated; forked from a
# 10 MB interpreter, it reports its own.
_RUNNER = """
import os, sys, time
report = int(sys.argv[1])
started = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic() - started
code = os.waitstatus_to_exitcode(status)
line = f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss} {code}"
os.write(report, line.encode())
"""


def run_measured(argv: Argv, env: dict[str, str], stderr: int) -> tuple[float, float, float, int]:
    """Run *argv* (stdout discarded, stderr to *stderr*); return wall s, CPU s, peak RSS
    MB and the exit code, all the tool's own."""
    read, write = os.pipe()
    try:
        subprocess.run(
            [sys.executable, "-S", "-c", _RUNNER, str(write), *map(str, argv)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=(write,),
            check=True,
        )
        os.close(write)
        write = -1
        wall, cpu, rss_kb, code = os.read(read, 200).split()
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    return float(wall), float(cpu), int(rss_kb) / 1024, int(code)


def measure(
    argv: Argv, env: dict[str, str], requests: Callable[[], int]
) -> tuple[float, float, float, int, int]:
    """Run *argv* once the disk and the machine are idle; return wall s, CPU s, peak RSS
    MB, requests and the exit code.

    The sync writes back what the tool before wrote, which the kernel would otherwise
    do during this one's run. It also matters on ext4 without a journal (this
    machine's root file system): a new file there skips every inode freed in the last
    minute, or in the last six while their inode table is not yet written back, one
    by one, and after a big delete a restore ran several times slower than the same
    restore minutes later. The sync leaves only the minute."""
    os.sync()
    settle()
    before = requests()
    with tempfile.TemporaryFile() as err:
        wall, cpu, rss, code = run_measured(argv, {**_inherited(), **env}, err.fileno())
        if code != 0:
            err.seek(0)
            tail = err.read()[-600:].decode(errors="replace")
            print(f"  exit {code}: {' '.join(map(str, argv[:4]))}...\n{tail}")
    return wall, cpu, rss, requests() - before, code


def _inherited() -> dict[str, str]:
    """Return this environment without AWS settings (a CA bundle, a profile), which
    would reach the tools unevenly, and without PYTHONDONTWRITEBYTECODE: an installed
    Python tool runs from compiled bytecode, not from source compiled on every run."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def wait_out_cleanup(
    stamp: Path,
    *,
    quiet: float = QUIET,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until *quiet* seconds have passed since the cleanup whose time *stamp*
    holds, if it holds one; return the seconds waited.

    A run ends by deleting its trees, over 400,000 files. On ext4 without a journal
    (this machine's root file system) a new file skips, one by one, every inode freed
    in the last minute, or in the last six while its inode table block is dirty, and
    every file created beside them dirties the block again: a run started right
    after the last one measured every tool's restore up to 1.7 times slower (rclone
    with 16 transfers, 10.5 s against 6.1 s), 7 minutes after that cleanup."""
    try:
        ended = float(stamp.read_text())
    except (OSError, ValueError):
        return 0.0
    left = min(ended + quiet - clock(), quiet)  # the min: a clock set back
    if left <= 0:
        return 0.0
    print(f"waiting {left:.0f} s: the last run's deletes are too recent for this disk", flush=True)
    sleep(left)
    return left


def mark_cleaned(stamp: Path) -> None:
    """Note in *stamp* when this run's trees were deleted (``measure`` syncs the disk
    before each run, the next run's too)."""
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(f"{time.time()}\n")


def median(runs: list[Figure]) -> Figure:
    """Return the run of median wall time (the upper one of an even count); a failed
    run, if any, so that no failure hides behind a good median."""
    failed = [f for f in runs if f.exit_code != 0]
    if failed:
        return failed[0]
    return sorted(runs, key=lambda f: f.wall)[len(runs) // 2]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class Bench:
    """The tools, how to count the server's requests, and the figures of one run; on a
    link of the network suite, its name and proxy too."""

    def __init__(
        self,
        requests: Callable[[], int],
        tools: list[Peer],
        work: Path,
        *,
        link: str = "",
        proxy: links.Proxy | None = None,
    ) -> None:
        self.requests = requests
        self.tools = tools
        self.work = work
        self.link = link
        self.proxy = proxy
        self.figures: list[Figure] = []

    def url(self, peer: Peer, tree: str) -> str:
        return f"s3://{BUCKET}/{tree}{self.tag}/{slug(peer.name)}"

    @property
    def tag(self) -> str:
        """What names this link's prefixes and directories apart from other links'."""
        return "-" + slug(self.link) if self.link else ""

    def phase(
        self,
        name: str,
        files: int,
        argv: Callable[[Peer], Argv | None],
        *,
        quiet: bool = False,
        repeat: int = 1,
    ) -> None:
        """Run *name* with every tool in turn (a tool whose *argv* is None sits it out).

        A phase that changes nothing (a no-op) may *repeat*: the tools take turns that
        many times and each keeps its run of median wall time, so one noisy second
        decides no sub-second figure."""
        if not quiet:
            print(f"{name}:", flush=True)
        runs: dict[str, list[Figure]] = {}
        for _ in range(repeat):
            for peer in self.tools:
                command = argv(peer)
                if command is None:
                    continue
                if self.proxy is not None:
                    self.proxy.taken()  # what came before is not this run's
                wall, cpu, rss, requests, code = measure(command, dict(peer.env), self.requests)
                peak = self.proxy.taken().peak if self.proxy is not None else 0
                figure = Figure(
                    name, peer.name, files, wall, cpu, rss, requests, code, self.link, peak
                )
                runs.setdefault(peer.name, []).append(figure)
        if quiet:
            return
        for group in runs.values():
            f = median(group)
            self.figures.append(f)
            walls = "" if repeat == 1 else "  of " + " ".join(f"{g.wall:.2f}" for g in group)
            print(
                f"  {f.tool:12} {f.wall:8.2f} s  cpu {f.cpu:7.2f} s "
                f"({f.cpu_ms_per_file:5.2f} ms/file)  rss {f.rss_mb:6.0f} MB  "
                f"{f.requests:7} requests"
                + (f"  peak {f.peak:4} connections" if self.link else "")
                + ("" if f.exit_code == 0 else f"  EXIT {f.exit_code}")
                + walls,
                flush=True,
            )


def run(sizes: Sizes, only: Sequence[str] | None, work: Path) -> list[Figure]:
    """Run the loopback suite, then the network suite; return every figure."""
    server = seaweed.start(work / "seaweed", metrics=True)
    tls = servers.start_tls_gateway(server, work / "tls", metrics=True)
    assert tls.metrics is not None

    def requests() -> int:
        """Return the requests both gateways (http and https) have answered."""
        both = (str(server.metrics), str(tls.metrics))
        return sum(sum(seaweed.request_counts(url).values()) for url in both)

    def chosen(endpoint: str, ca: str | None = None) -> list[Peer]:
        tools = peers(endpoint, server.access_key, server.secret_key, work, ca=ca)
        return [p for p in tools if not only or p.name in only or slug(p.name) in only]

    figures: list[Figure] = []
    try:
        server.client().create_bucket(Bucket=BUCKET)
        if sizes.files:
            bench = Bench(requests, chosen(server.endpoint), work)
            print("tools: " + ", ".join(p.name for p in bench.tools), flush=True)
            _website(bench, sizes.files)
            if sizes.tiny:
                _tiny(bench, sizes.tiny)
            if sizes.large_mib:
                _large(bench, sizes.large_mib)
            figures += bench.figures
        if sizes.links and shutil.which("node") is None:
            print("network suite skipped: node is not installed (make venv-node)", flush=True)
        for scheme, rtt in sizes.links if shutil.which("node") else ():
            direct, ca = (server.endpoint, None) if scheme == "http" else (tls.endpoint, tls.ca)
            with links.delayed(direct, rtt) as proxy:
                # s3cmd sends one file at a time: at 80 ms a push of a few thousand takes
                # many minutes, and it leads no phase even on loopback
                tools = [p for p in chosen(proxy.endpoint, ca) if p.name != "s3cmd"]
                link = f"{scheme}/{rtt}"
                print(f"link {link}: " + ", ".join(p.name for p in tools), flush=True)
                bench = Bench(requests, tools, work, link=link, proxy=proxy)
                _website(bench, sizes.network_files, repeat=sizes.network_repeat)
                figures += bench.figures
        return figures
    finally:
        servers.stop(tls)
        seaweed.stop(server)


@dataclass(frozen=True)
class Sizes:
    """What a run measures: the loopback suite's trees (0 skips one), and the network
    suite's links and tree."""

    files: int = 20_000
    tiny: int = 200_000
    large_mib: int = 1024
    links: tuple[tuple[str, int], ...] = tuple(links.parse(",".join(links.ALL)))
    network_files: int = 5000
    network_repeat: int = 3


def _website(bench: Bench, files: int, *, repeat: int = REPEAT) -> None:
    """The website tree's phases: aged (push, no-op, restore, 1% changed; on loopback
    the index too), then fresh (``_fresh_website``)."""
    site = bench.work / f"site{bench.tag}"
    size = trees.website(site, files)
    print(f"website tree: {files} files, {size / 1e6:.0f} MB", flush=True)
    index = bench.work / "site.idx"

    def push(peer: Peer) -> Argv:
        return peer.push(site, bench.url(peer, "site"))

    def push_index(peer: Peer) -> Argv | None:
        if peer.name != "s3sync":
            return None
        return [*peer.push(site, bench.url(peer, "site")), "--index", index]

    def restore(peer: Peer) -> Argv:
        return peer.restore(
            bench.url(peer, "site"), bench.work / f"restore{bench.tag}-{slug(peer.name)}"
        )

    bench.phase("push", files, push)
    bench.phase("no-op push", files, push, repeat=repeat)
    # before the churn deletes anything: on ext4 without a journal a new file skips every
    # inode freed in the last minute or more, so the first tool to restore within it
    # (always s3sync) paid for the bench's own deletes, 2 s of CPU in one run
    bench.phase("restore", files, restore)
    bench.phase("no-op restore", files, restore, repeat=repeat)
    trees.churn(site)
    bench.phase("push 1% changed, deleted, added", files, push)
    if not bench.link:  # the index sends no request: no link to measure
        bench.phase("index", files, push_index, quiet=True)  # builds the index
        bench.phase("no-op push --index", files, push_index, repeat=repeat)
    shutil.rmtree(site)
    _fresh_website(bench, files, repeat=repeat)


def _fresh_website(bench: Bench, files: int, *, repeat: int = REPEAT) -> None:
    """The same phases of push on a tree written just before its first push, mtimes
    untouched: every file is within any tool's clock allowance of its upload (s3sync's
    fudge window among them), so the no-op and 1% pushes show what each tool does with
    files whose times alone cannot settle them."""
    site = bench.work / f"fresh{bench.tag}"
    size = trees.website(site, files, aged=False)
    print(f"fresh website tree: {files} files, {size / 1e6:.0f} MB", flush=True)

    def push(peer: Peer) -> Argv:
        return peer.push(site, bench.url(peer, "fresh"))

    bench.phase("push (fresh tree)", files, push)
    bench.phase("no-op push (fresh tree)", files, push, repeat=repeat)
    trees.churn(site)
    bench.phase("push 1% changed, deleted, added (fresh tree)", files, push)
    shutil.rmtree(site)


def _tiny(bench: Bench, files: int) -> None:
    """The tiny tree measures memory and listing: a no-op push by every tool against
    one prefix that s3sync fills. Each tool takes those objects as up to date: their
    LastModified is after the files' mtime (aws, s5cmd), their ``mtime`` metadata is
    the files' (rclone reads the same name) and their ETag is the MD5 (s3cmd); the
    requests column shows any tool that rewrites. Pushing 200,000 files with each
    tool would take hours (aws and s3cmd, half an hour each), for nothing the website
    tree does not measure."""
    tiny = bench.work / "tiny"
    trees.tiny(tiny, files)
    print(f"tiny tree: {files} files", flush=True)
    url = f"s3://{BUCKET}/tiny"

    def seed(peer: Peer) -> Argv | None:
        return peer.push(tiny, url) if peer.name == "s3sync" else None

    bench.phase(f"push {files} tiny files (s3sync: every tool's prefix)", files, seed)
    bench.phase(f"no-op push {files} tiny files", files, lambda peer: peer.push(tiny, url))
    shutil.rmtree(tiny)


def _large(bench: Bench, total_mib: int) -> None:
    large = bench.work / "large"
    trees.large(large, total_mib)
    print(f"large files: {total_mib} MiB", flush=True)
    bench.phase(
        f"push {total_mib} MiB in large files",
        len(list(large.iterdir())),
        lambda peer: peer.push(large, bench.url(peer, "large")),
    )
    shutil.rmtree(large)


def table(figures: list[Figure], total_mib: int) -> str:
    """Return the figures as an RST table: per phase, each tool's wall time and its ratio
    to s3sync's, CPU per file, peak RSS and requests."""
    head = ("Phase", "Tool", "Wall s", "x s3sync", "CPU ms/file", "Peak RSS MB", "Requests")
    rows: list[tuple[str, ...]] = []
    for phase in dict.fromkeys(f.phase for f in figures):
        group = [f for f in figures if f.phase == phase]
        ours = next((f.wall for f in group if f.tool == "s3sync"), None)
        large = "large" in phase
        for f in sorted(group, key=lambda f: f.wall):
            wall = f"{f.wall:.2f}"
            if large:
                wall += f" ({total_mib / f.wall:.0f} MiB/s)"
            ratio = f"{f.wall / ours:.2f}" if ours else "-"
            failed = "" if f.exit_code == 0 else f" (exit {f.exit_code})"
            rows.append(
                (
                    phase,
                    f.tool + failed,
                    wall,
                    ratio,
                    f"{f.cpu_ms_per_file:.2f}",
                    f"{f.rss_mb:.0f}",
                    str(f.requests),
                )
            )
            phase = ""
    return _rst(head, rows)


def network_table(figures: list[Figure]) -> str:
    """Return the network suite's figures as an RST table: per phase and link, s3sync's
    wall time, requests and peak connections, and the best peer's, with the ratio."""
    head = ("Phase", "Link", "s3sync s", "best peer", "s", "ratio", "requests", "peak")
    rows: list[tuple[str, ...]] = []
    for phase in dict.fromkeys(f.phase for f in figures):
        shown = phase
        for link in dict.fromkeys(f.link for f in figures if f.phase == phase):
            group = [f for f in figures if f.phase == phase and f.link == link]
            ours = next((f for f in group if f.tool == "s3sync"), None)
            others = [f for f in group if f.tool != "s3sync" and f.exit_code == 0]
            best = min(others, key=lambda f: f.wall, default=None)
            if ours is None:
                continue
            failed = "" if ours.exit_code == 0 else f" (exit {ours.exit_code})"
            rows.append(
                (
                    shown,
                    link,
                    f"{ours.wall:.2f}{failed}",
                    best.tool if best else "-",
                    f"{best.wall:.2f}" if best else "-",
                    f"{ours.wall / best.wall:.2f}" if best else "-",
                    f"{ours.requests} / {best.requests}" if best else str(ours.requests),
                    f"{ours.peak} / {best.peak}" if best else str(ours.peak),
                )
            )
            shown = ""
    return _rst(head, rows)


def _rst(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Return *rows* under *head* as an RST simple table."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    title = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
    lines = [rule, title, rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([*lines, rule])


def tables(figures: list[Figure], total_mib: int) -> str:
    """Return the loopback suite's table and the network suite's, those that ran."""
    loopback = [f for f in figures if not f.link]
    network = [f for f in figures if f.link]
    parts = [table(loopback, total_mib)] if loopback else []
    if network:
        parts.append(network_table(network))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000, help="files of the website tree")
    parser.add_argument(
        "--tiny", type=int, default=200_000, help="files of the tiny tree (0: skip)"
    )
    parser.add_argument("--large-mib", type=int, default=1024, help="MiB of large files (0: skip)")
    parser.add_argument(
        "--links",
        default=",".join(links.ALL),
        help="network suite: SCHEME/RTT_MS links, comma-separated ('' skips the suite)",
    )
    parser.add_argument(
        "--network-files", type=int, default=5000, help="files of the network suite's tree"
    )
    parser.add_argument("--only", help="comma-separated tools (s3sync, aws-s3-sync, s5cmd, ...)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 / 20,000 files, 256 MiB; 500 files over http/0, http/80, https/20",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--table", type=Path, help="only print the table of a results file")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help=f"start at once, not {QUIET / 60:.0f} minutes after the last run's cleanup",
    )
    args = parser.parse_args(argv)
    if args.table:
        saved = json.loads(args.table.read_text())
        figures = [Figure(**f) for f in saved["figures"]]
        print(f"{saved['machine']}\n\n{tables(figures, saved.get('large_mib', args.large_mib))}")
        return 0
    if args.quick:
        args.files, args.tiny, args.large_mib = 2000, 20_000, 256
        args.network_files = 500
        if args.links == ",".join(links.ALL):
            args.links = "http/0,http/80,https/20"
    try:
        chosen_links = tuple(links.parse(args.links))
    except ValueError as exc:
        parser.error(str(exc))
    sizes = Sizes(
        files=args.files,
        tiny=args.tiny,
        large_mib=args.large_mib,
        links=chosen_links,
        network_files=args.network_files,
        network_repeat=1 if args.quick else 3,
    )
    only = args.only.split(",") if args.only else None
    # s3sync runs from this checkout: compile it once, as installing it would
    compileall.compile_dir(Path(__file__).parent.parent / "s3sync", quiet=1)
    if not args.no_wait:
        wait_out_cleanup(CLEANED)
    try:
        with tempfile.TemporaryDirectory(
            prefix="s3sync-bench-", dir=os.environ.get("BENCH_DIR")
        ) as tmp:
            figures = run(sizes, only, Path(tmp))
    finally:
        mark_cleaned(CLEANED)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\n{machine}\n\n{tables(figures, args.large_mib)}")
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "argv": sys.argv[1:],
                "figures": [asdict(f) for f in figures],
            },
            indent=1,
        )
    )
    return 0 if all(f.exit_code == 0 for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
