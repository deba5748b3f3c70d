"""In-memory stand-ins for the sync's ports (Intacct, Salesforce, the crosswalk and the sync log).

The crosswalk fake is held to the real store's behaviour by tests/integration/test_crosswalk.py, which
runs the same contract tests against both; the sync service's tests run against the fakes in
tests/unit and again against DynamoDB Local in tests/integration.
"""
