"""sfintacct: Salesforce to Sage Intacct sync.

The core package shared by every Lambda function through the layer. It knows nothing about Lambda
events: handlers in ``functions/`` parse the event, call into this package and shape the response.
"""
