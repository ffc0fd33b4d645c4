"""Glue's vocabulary, shared by both services and the clients: run states and their legal
transitions, Glue's cron expressions, the Glue-shaped dict <-> protobuf mapping, the special
argument keys, and the CloudWatch log group names. Nothing here opens a socket, a database or a
process; that plumbing lives in ``servicekit``."""
