"""The catalog service: the public Glue API, its rules and the source of truth for jobs."""
