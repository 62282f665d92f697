"""``python -m s3sync``."""

from s3sync.cli import run

run()
