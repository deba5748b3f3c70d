"""Every file of the Salesforce package is well-formed metadata of the type its name says, and nothing
that belongs to one org (URLs, users, keys) is committed: placeholders stand for them and
sfdx-project.json says which environment variable fills each one at deploy time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sfpkg_support import FORCE_APP, PACKAGE_DIR, metadata_files, xml_root

METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
# File suffix (source format) -> the root element of that metadata type.
ROOT_ELEMENTS = {
    ".cls-meta.xml": "ApexClass",
    ".customPermission-meta.xml": "CustomPermission",
    ".eca-meta.xml": "ExternalClientApplication",
    ".ecaOauth-meta.xml": "ExtlClntAppOauthSettings",
    ".ecaOauthPlcy-meta.xml": "ExtlClntAppOauthConfigurablePolicies",
    ".ecaPlcy-meta.xml": "ExtlClntAppConfigurablePolicies",
    ".externalCredential-meta.xml": "ExternalCredential",
    ".field-meta.xml": "CustomField",
    ".flow-meta.xml": "Flow",
    ".listView-meta.xml": "ListView",
    ".namedCredential-meta.xml": "NamedCredential",
    ".object-meta.xml": "CustomObject",
    ".permissionset-meta.xml": "PermissionSet",
    ".quickAction-meta.xml": "QuickAction",
    ".workflow-meta.xml": "Workflow",
}
PLACEHOLDER = re.compile(r"%%[A-Z0-9_]+%%")
URL = re.compile(r"https?://[^\s<\"']+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
SALESFORCE_ID = re.compile(r"\b(?:00D|005|0PS|0Ho|04t)[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?\b")
XML_FILES = [path for path in metadata_files() if path.name.endswith("-meta.xml")]


def _suffix(path: Path) -> str | None:
    return next((suffix for suffix in ROOT_ELEMENTS if path.name.endswith(suffix)), None)


def _project() -> dict[str, object]:
    project: dict[str, object] = json.loads((PACKAGE_DIR / "sfdx-project.json").read_text())
    return project


def _replacements() -> list[dict[str, str]]:
    entries = _project()["replacements"]
    assert isinstance(entries, list)
    return entries


def test_every_file_is_metadata_of_a_known_type() -> None:
    unknown = [
        path.relative_to(FORCE_APP)
        for path in metadata_files()
        if _suffix(path) is None
        and not (path.suffix == ".cls" and path.with_name(path.name + "-meta.xml").exists())
    ]
    assert unknown == []


@pytest.mark.parametrize("path", XML_FILES, ids=lambda path: str(path.relative_to(FORCE_APP)))
def test_file_is_well_formed_xml_whose_root_matches_its_type(path: Path) -> None:
    suffix = _suffix(path)
    assert suffix is not None, f"{path.name}: unknown metadata suffix"
    root = xml_root(path)
    assert root.tag == f"{{{METADATA_NS}}}{ROOT_ELEMENTS[suffix]}"
    full_name = root.find(f"{{{METADATA_NS}}}fullName")
    if full_name is not None and suffix in (".field-meta.xml", ".listView-meta.xml"):
        assert full_name.text == path.name.removesuffix(suffix)


def test_every_apex_class_has_its_metadata_and_the_project_api_version() -> None:
    version = _project()["sourceApiVersion"]
    classes = sorted(FORCE_APP.rglob("*.cls"))
    assert classes
    for path in classes:
        meta = xml_root(path.with_name(path.name + "-meta.xml"))
        assert meta.findtext(f"{{{METADATA_NS}}}apiVersion") == version
        assert meta.findtext(f"{{{METADATA_NS}}}status") == "Active"


def test_flows_and_outbound_messages_use_the_project_api_version() -> None:
    version = _project()["sourceApiVersion"]
    for path in FORCE_APP.rglob("*.flow-meta.xml"):
        assert xml_root(path).findtext(f"{{{METADATA_NS}}}apiVersion") == version
    for path in FORCE_APP.rglob("*.workflow-meta.xml"):
        for version_element in xml_root(path).iter(f"{{{METADATA_NS}}}apiVersion"):
            assert version_element.text == version


def test_each_replacement_names_a_file_that_holds_its_placeholder() -> None:
    for entry in _replacements():
        path = PACKAGE_DIR / entry["filename"]
        assert path.is_file(), entry["filename"]
        assert entry["stringToReplace"] in path.read_text(), entry
        assert PLACEHOLDER.fullmatch(entry["stringToReplace"]), entry
        assert entry["replaceWithEnv"] == entry["stringToReplace"].strip("%"), entry


def test_every_placeholder_in_the_package_is_replaced_at_deploy_time() -> None:
    replaced = {(entry["filename"], entry["stringToReplace"]) for entry in _replacements()}
    for path in metadata_files():
        relative = str(path.relative_to(PACKAGE_DIR))
        for placeholder in PLACEHOLDER.findall(path.read_text()):
            assert (relative, placeholder) in replaced, f"{relative}: {placeholder} has no replacement"


def test_no_url_user_or_org_of_a_real_org_is_committed() -> None:
    """Endpoints, usernames and emails come from the environment; ids of orgs, users and packages never
    appear (the Apex tests' known answer uses obviously made-up ids of zeros)."""
    for path in metadata_files():
        text = path.read_text()
        assert [url for url in URL.findall(text) if url != METADATA_NS] == [], path
        assert EMAIL.findall(text) == [], path
        for found in SALESFORCE_ID.findall(text):
            assert set(found[3:15]) <= {"0", "1"}, f"{path}: {found}"


def test_the_global_oauth_settings_of_the_external_client_app_are_not_committed() -> None:
    """Salesforce: these settings hold the consumer key and secret and must not be in source control."""
    assert list(FORCE_APP.rglob("*.ecaGlblOauth-meta.xml")) == []
    assert list(PACKAGE_DIR.rglob("*.ecaGlblOauth*")) == []


def test_permission_set_descriptions_fit_the_255_characters_salesforce_allows() -> None:
    """Object Reference, PermissionSet: Description, "Limit: 255 characters"."""
    paths = sorted(FORCE_APP.rglob("*.permissionset-meta.xml"))
    assert paths
    for path in paths:
        description = xml_root(path).findtext(f"{{{METADATA_NS}}}description") or ""
        assert 0 < len(description) <= 255, f"{path.name}: {len(description)} characters"
