"""Plumbing both services share (errors, servers, databases, logging) and Glue's cron format.

The cron parser lives here because the catalog validates schedules, the scheduler fires them and
gluectl previews them; otherwise no Glue rules live in this package.
"""
