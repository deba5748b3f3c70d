"""A local stand-in for the Sage Intacct XML gateway (HTTPS), with an admin API for fault injection.

Start it with `sandbox.intacct.server.start_intacct_sandbox`.
"""
