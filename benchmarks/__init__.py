"""``make bench``: s3sync and its peers, side by side, against one local SeaweedFS."""
