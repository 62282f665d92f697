"""``python -m s3sync`` and the ``s3sync`` command: the collector set for a run, then
the command line."""

import gc


def main() -> None:
    """Run the command line with the cyclic garbage collector made patient.

    A run makes hundreds of thousands of tuples and lists (a stat and a pair per file
    on each side), none of them in a cycle: freed by their counts, they only feed the
    collector, whose passes (one per 700 new objects, from the first import on) find
    nothing and cost a no-op push with an index 6 ms, four percent of it.
    """
    gc.set_threshold(100_000, 20, 10)
    from s3sync.cli import run  # after: its imports alone made the collector run 26 times

    run()


if __name__ == "__main__":
    main()
