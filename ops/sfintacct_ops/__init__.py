"""sfintacct operations: the operator's command line (status, retry, redrive, backfill).

Not part of the Lambda layer: it imports the product package `sfintacct` for the same clients, models
and settings as the workers, and runs on the operator's machine (`.venv/bin/sfintacct`, made by
`make setup`).
"""
