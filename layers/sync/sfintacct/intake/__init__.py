"""The intake: turn Salesforce notifications into SyncRequests on the work queues.

Three ways in, one way out:

- Outbound Messages (SOAP 1.1), from a sender with a URL token of the intake secret or the trusted
  client certificate (mutual TLS), and for an allowed OrganizationId;
- Platform Event callouts (JSON) signed with HMAC-SHA256 over "<timestamp>.<body>";
- Event Relay events (custom platform events and Change Data Capture) from EventBridge.

Each accepted notification becomes one `SyncRequest` per record, sent to the queue of its job.
A message is accepted only after every one of its requests is enqueued; a refused message enqueues
nothing. Nothing here knows about Lambda events: `functions/intake/app.py` adapts them.
"""
