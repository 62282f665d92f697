"""The use cases, one a module: push, restore, copy and stream.

A package of their own so that the API loads each on first use (a no-op push never
pays for restore's imports) without a module import rebinding ``s3sync.push`` and
its siblings, the API's functions of the same names.
"""
