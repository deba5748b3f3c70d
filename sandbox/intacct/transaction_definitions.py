"""SODOCUMENTPARAMS: the Order Entry transaction definitions, readable like any other object.

The sandbox's transaction definitions are `store.TRANSACTION_DEFINITIONS` (the ones create_sotransaction
and docparid accept). This module gives them the object Intacct lists them under, so that `query`,
`readByQuery`, `read`, `readByName` and `lookup` of SODOCUMENTPARAMS answer as for other objects. Source:
https://developer.intacct.com/api/order-entry/order-entry-transaction-definitions/ (object
SODOCUMENTPARAMS; its `query` example selects RECORDNO, DOCID and DOCCLASS, "the record number, template
name, and template type"). DESCRIPTION and STATUS are not named there (UNCERTAIN); the sandbox has them
so that a client asking for them is not refused, and nothing in the product selects them.
"""

from __future__ import annotations

from collections.abc import Mapping

OBJECT_NAME = "SODOCUMENTPARAMS"
FIELDS = ("RECORDNO", "DOCID", "DOCCLASS", "DESCRIPTION", "STATUS")
# The template type (DOCCLASS) of each seeded definition, as its name says.
_CLASSES = {"Sales Quote": "Quote", "Sales Order": "Order", "Sales Invoice": "Invoice"}


def definition_records(definitions: Mapping[str, str]) -> list[dict[str, str]]:
    """One SODOCUMENTPARAMS record (without RECORDNO) per transaction definition name."""
    return [
        {
            "DOCID": name,
            "DOCCLASS": _CLASSES.get(name, "Order"),
            "DESCRIPTION": name,
            "STATUS": "active",
        }
        for name in definitions
    ]
