"""The longest values Intacct accepts in the fields the sync writes, where a source gives the length.

Keys are the mapping targets of `sfintacct.mapping` with their section: "customer.<target>" (a
CUSTOMER field, e.g. "customer.contact.phone1" is DISPLAYCONTACT/PHONE1), "order.<target>" (a
create_sotransaction header element) and "line.<target>" (an sotransitem element).

Where the numbers come from (no official table lists them; Intacct's REST OpenAPI, developer.sage.com,
gives no maxLength for customer or contact fields, and the XML API reference and the XSD give none):

- Intacct's own help, "CSV imports: Contact field definitions"
  (https://www.intacct.com/ia/docs/en_US/help_action/More/Uploading_Data/contact-field-definitions.htm):
  CONTACT_NAME is Character, length 200. A contact is the same record whether it comes from a CSV
  import or from DISPLAYCONTACT, so the length is taken as the API's too.
- DataBlend's Intacct target documentation, which writes customers and contacts through Intacct's
  API (https://lp.datablend.com/knowledge/customers-sage-intacct and .../contacts-sage-intacct):
  "free text (N)" per field. Third-party, so lower confidence; only numbers its two pages agree on
  (or that one page gives and the other does not contradict) are listed. COMPANYNAME is 100 on one page
  and 200 on the other: the product holds it to the lower, 100, so that a company with either limit takes
  what is sent (the sandbox enforces it only when told which, and the tests try both).

A field missing here has no known limit: the mapping cannot check it before Intacct does. The sandbox
(sandbox/intacct/README.md) keeps the same table with each source and confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_INTACCT_CSV_CONTACT = "Intacct help, CSV imports: Contact field definitions (CONTACT_NAME, length 200)"
_DATABLEND_BOTH = "DataBlend Intacct customers and contacts pages (third-party): free text ({n})"
_DATABLEND_CONTACT = "DataBlend Intacct contacts page (third-party): free text ({n})"
_DATABLEND_CUSTOMER = "DataBlend Intacct customers page (third-party): free text ({n})"
_DATABLEND_DISAGREE = "DataBlend Intacct pages (third-party) disagree, 100 and 200: the lower is kept"

_LENGTHS: dict[str, tuple[int, str]] = {
    "customer.contact.contact_name": (200, _INTACCT_CSV_CONTACT),
    "customer.contact.company_name": (100, _DATABLEND_DISAGREE),
    "customer.contact.phone1": (30, _DATABLEND_CONTACT.format(n=30)),
    "customer.contact.phone2": (30, _DATABLEND_CONTACT.format(n=30)),
    "customer.contact.cell_phone": (30, _DATABLEND_BOTH.format(n=30)),
    "customer.contact.fax": (30, _DATABLEND_CONTACT.format(n=30)),
    "customer.contact.email1": (200, _DATABLEND_CONTACT.format(n=200)),
    "customer.contact.email2": (200, _DATABLEND_CONTACT.format(n=200)),
    "customer.contact.first_name": (40, _DATABLEND_CONTACT.format(n=40)),
    "customer.contact.last_name": (40, _DATABLEND_CONTACT.format(n=40)),
    "customer.contact.mail_address.address1": (255, _DATABLEND_CUSTOMER.format(n=255)),
    "customer.contact.mail_address.address2": (255, _DATABLEND_CUSTOMER.format(n=255)),
    "customer.contact.mail_address.address3": (255, _DATABLEND_CUSTOMER.format(n=255)),
    "customer.contact.mail_address.city": (80, _DATABLEND_BOTH.format(n=80)),
    "customer.contact.mail_address.country": (60, _DATABLEND_CONTACT.format(n=60)),
    "customer.comments": (200, _DATABLEND_CUSTOMER.format(n=200)),
}

MAX_LENGTHS: Mapping[str, int] = MappingProxyType({key: length for key, (length, _) in _LENGTHS.items()})
SOURCES: Mapping[str, str] = MappingProxyType({key: source for key, (_, source) in _LENGTHS.items()})
