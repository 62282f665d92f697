"""``make demo``: a local S3 server, a sample website, a push, a no-op push, an incremental push."""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import seaweed

HERE = Path(__file__).resolve().parent.parent
DEMO = HERE / ".demo"
BUCKET = "demo-site"
SECTIONS = ("blog", "docs", "products", "about", "assets/img", "assets/css", "assets/js")


def make_site(root: Path, *, files: int = 300) -> None:
    """Write a website-like tree of *files* files, as if built a day ago."""
    rng = random.Random(42)
    shutil.rmtree(root, ignore_errors=True)
    built = time.time() - 86400
    for i in range(files):
        section = SECTIONS[i % len(SECTIONS)]
        depth = "/".join(f"part{j}" for j in range(i % 3))
        folder = root / section / depth
        folder.mkdir(parents=True, exist_ok=True)
        if section.endswith("img"):
            path = folder / f"photo{i}.jpg"
            path.write_bytes(rng.randbytes(rng.randint(2_000, 60_000)))
        elif section.endswith("css"):
            path = folder / f"style{i}.css"
            path.write_text(f"body {{ margin: {i}px; }}\n" * rng.randint(5, 50))
        elif section.endswith("js"):
            path = folder / f"app{i}.js"
            path.write_text(f"console.log({i});\n" * rng.randint(5, 100))
        else:
            path = folder / f"page{i}.html"
            path.write_text(
                f"<html><body><h1>Page {i}</h1>{'<p>text</p>' * rng.randint(1, 200)}"
                "</body></html>\n"
            )
        os.utime(path, (built, built))
    (root / "index.html").write_text("<html><body>Home</body></html>\n")
    os.utime(root / "index.html", (built, built))


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def s3sync(server: seaweed.Server, *args: str) -> None:
    argv = [sys.executable, "-m", "s3sync", *args, "--endpoint-url", server.endpoint]
    args = tuple(a.replace(f"{HERE}/", "") for a in args)
    shown = ["s3sync", *args, "--endpoint-url", server.endpoint]
    print("$ " + shlex.join(shown), flush=True)
    env = {**os.environ, **server.env()}
    code = subprocess.run(argv, env=env, cwd=HERE).returncode
    print(f"(exit code {code})", flush=True)
    if code:
        raise SystemExit(code)


def main() -> int:
    say("Starting SeaweedFS (S3 on loopback) in .demo/")
    state = DEMO / "server.json"
    if state.exists():
        seaweed.main(["stop", str(DEMO)])
    shutil.rmtree(DEMO, ignore_errors=True)  # every demo starts from an empty server
    server = seaweed.start(DEMO)
    print(f"S3 endpoint: {server.endpoint}")
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    site = DEMO / "site"
    make_site(site)
    count = sum(1 for p in site.rglob("*") if p.is_file())
    say(f"First push: {count} files of a sample website in {site.relative_to(HERE)}")
    s3sync(server, "push", str(site), f"s3://{BUCKET}/www")

    say("Second push: nothing changed, so nothing travels")
    s3sync(server, "push", str(site), f"s3://{BUCKET}/www")

    say("Edit 2 pages, add 2 files, delete 1, then push with -v to see each action and why")
    (site / "index.html").write_text("<html><body>Home, updated</body></html>\n")
    with open(site / "blog" / "page0.html", "a") as f:
        f.write("<p>a new paragraph</p>\n")
    (site / "blog" / "new-post.html").write_text("<html><body>New post</body></html>\n")
    (site / "assets" / "css" / "extra.css").write_text("h1 { color: teal; }\n")
    sorted((site / "docs").rglob("*.html"))[0].unlink()
    s3sync(server, "push", "-v", str(site), f"s3://{BUCKET}/www")

    say("The server died? Restore the site into a fresh directory, original mtimes and all")
    restored = DEMO / "restored"
    s3sync(server, "restore", f"s3://{BUCKET}/www", str(restored))
    same = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == sorted(
        p.relative_to(restored).as_posix() for p in restored.rglob("*") if p.is_file()
    ) and all(
        (restored / rel).read_bytes() == (site / rel).read_bytes()
        and (restored / rel).stat().st_mtime_ns == (site / rel).stat().st_mtime_ns
        for rel in (p.relative_to(site) for p in site.rglob("*") if p.is_file())
    )
    print("restored tree identical to the source, mtimes included:", same)
    s3sync(server, "restore", f"s3://{BUCKET}/www", str(restored))

    say("Done")
    print(f"The server is still running at {server.endpoint} (data in .demo/).")
    print("Look around with the AWS CLI or boto3, using these credentials:")
    print(
        f"  export AWS_ACCESS_KEY_ID={server.access_key} AWS_SECRET_ACCESS_KEY={server.secret_key}"
    )
    print(
        f"  .venv/bin/s3sync push -n -v .demo/site s3://{BUCKET}/www "
        f"--endpoint-url {server.endpoint}"
    )
    print("Stop it with:  make demo-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
