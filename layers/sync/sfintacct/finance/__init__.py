"""Finance back to sales: invoices, payments and AR status from Intacct onto the Salesforce records.

invoices  ARINVOICE records as the run reads them; the state sales sees (Open, Partially paid, Paid)
fields    the Salesforce finance fields and the values a record should show
state     what the run remembers (DynamoDB): values last written per record, watermark, day of aging
run       one run: changed invoices, their deals and customers, only changed values written
runtime   the scheduled function's clients, sync log entries and how a run ends
"""
