"""`python -m sfintacct_ops ...` (what the `sfintacct` launcher runs)."""

from sfintacct_ops.cli import main

raise SystemExit(main())
