#!/usr/bin/env bash
# Check-only deploy of the Salesforce package (salesforce/) to the org that `make contract` is given:
# `sf project deploy validate` compiles the Apex, runs its test class and checks every component against
# the org, and changes nothing. Needs the Salesforce CLI (`npm install --global @salesforce/cli`, which
# needs Node.js 22+) and the SFINTACCT_CONTRACT_SALESFORCE_* variables of the contract suite.
#
# The package's deploy-time variables default to values good enough for a validation: the endpoints to
# an unroutable host, the integration user and the contact e-mail to the contract suite's user. Export
# SFINTACCT_OUTBOUND_URL, SFINTACCT_EVENTS_URL, SFINTACCT_INTEGRATION_USERNAME or
# SFINTACCT_CONTACT_EMAIL to validate with the values you will deploy with.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for name in LOGIN_URL CLIENT_ID USERNAME PRIVATE_KEY_FILE; do
  variable="SFINTACCT_CONTRACT_SALESFORCE_${name}"
  [ -n "${!variable:-}" ] || missing+=("$variable")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: the package check needs ${missing[*]}" >&2
  exit 1
fi
if ! command -v sf >/dev/null; then
  echo "error: the Salesforce CLI 'sf' is not installed; install it with" >&2
  echo "       npm install --global @salesforce/cli   (Node.js 22 or newer)" >&2
  exit 1
fi

username="$SFINTACCT_CONTRACT_SALESFORCE_USERNAME"
export SFINTACCT_OUTBOUND_URL="${SFINTACCT_OUTBOUND_URL:-https://sfintacct-validation.invalid/salesforce/outbound}"
export SFINTACCT_EVENTS_URL="${SFINTACCT_EVENTS_URL:-https://sfintacct-validation.invalid/salesforce/events}"
export SFINTACCT_INTEGRATION_USERNAME="${SFINTACCT_INTEGRATION_USERNAME:-$username}"
export SFINTACCT_CONTACT_EMAIL="${SFINTACCT_CONTACT_EMAIL:-$username}"

alias_name="sfintacct-contract"
sf org login jwt \
  --instance-url "$SFINTACCT_CONTRACT_SALESFORCE_LOGIN_URL" \
  --client-id "$SFINTACCT_CONTRACT_SALESFORCE_CLIENT_ID" \
  --jwt-key-file "$SFINTACCT_CONTRACT_SALESFORCE_PRIVATE_KEY_FILE" \
  --username "$username" \
  --alias "$alias_name"
cd salesforce
sf project deploy validate \
  --source-dir force-app \
  --target-org "$alias_name" \
  --test-level RunSpecifiedTests \
  --tests SfintacctSyncCalloutTest \
  --wait 30
