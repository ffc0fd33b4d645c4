"""Who may call the catalog: access keys, IAM policies, and their checks on every operation."""
