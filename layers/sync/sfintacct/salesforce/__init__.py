"""Salesforce client of the workers (simple-salesforce): one-query reads, one-call write-backs.

Import the modules directly (`sfintacct.salesforce.client`, `.errors`, `.models`, `.settings`);
this package file imports nothing, so code that only needs the error types stays light.
"""
