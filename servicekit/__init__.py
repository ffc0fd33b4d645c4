"""Plumbing both services share: errors, servers, databases, logging. No Glue rules live here."""
