"""The store: S3 reached through maintained libraries, behind a narrow protocol.

``remote`` holds the ObjectStore the use cases call (S3Store; CloudFront), ``protocol``
builds each request and reads each answer with botocore, ``crt`` moves them through
awscrt, and ``listing`` reads a ListObjectsV2 page by botocore's rules.
"""
