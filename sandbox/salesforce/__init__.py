"""Salesforce sandbox: an HTTPS stand-in for the Salesforce REST API, OAuth and Outbound Messages."""
