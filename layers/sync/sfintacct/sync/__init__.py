"""The sync logic of the workers, free of Lambda events.

outcome            SyncOutcome: what became of one request
service            SyncService: Account -> customer, Opportunity -> order, exactly once
customers          the customer path both flows share (plan, write, record)
write_back         the Salesforce fields that show the result on the record
sync_log           every outcome, queryable by Salesforce id (DynamoDB)
ports              what the logic needs from the Intacct and Salesforce clients
errors             the sync's own error types and the text a person reads
salesforce_values  LastModifiedDate, IsWon and control-id stamps from Salesforce values
runtime            building the service from the Lambda environment
"""
