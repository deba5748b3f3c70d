"""Salesforce's own library (@salesforce/source-deploy-retrieve, the one the sf CLI deploys with) turns
the whole package into Metadata API format, with the deploy-time replacements applied.

This is the offline part of a deploy. Whether an org accepts the result is checked with
`sf project deploy validate` against a sandbox org (salesforce/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sfpkg_support import EXAMPLE_DEPLOY_ENVIRONMENT, PACKAGE_DIR, check_package

EXPECTED_TYPES = (
    "ApexClass",
    "CustomObject",
    "CustomPermission",
    "ExternalClientApplication",
    "ExternalCredential",
    "ExtlClntAppConfigurablePolicies",
    "ExtlClntAppOauthConfigurablePolicies",
    "ExtlClntAppOauthSettings",
    "Flow",
    "NamedCredential",
    "PermissionSet",
    "QuickAction",
    "Workflow",
)


def _copy_of_package(tmp_path: Path) -> Path:
    copy = tmp_path / "salesforce"
    shutil.copytree(PACKAGE_DIR, copy)
    return copy


def test_the_library_converts_the_whole_package() -> None:
    result = check_package()

    assert result.returncode == 0, result.stderr
    listed = {line.strip().split(":")[0] for line in result.stdout.splitlines()[1:]}
    assert listed == set(EXPECTED_TYPES)


def test_every_replacement_variable_is_required() -> None:
    result = check_package(unset=("SFINTACCT_EVENTS_URL",))

    assert result.returncode == 1
    assert "SFINTACCT_EVENTS_URL" in result.stderr


def test_a_file_the_library_cannot_place_fails_the_check(tmp_path: Path) -> None:
    copy = _copy_of_package(tmp_path)
    (copy / "force-app" / "main" / "default" / "classes" / "NoMetadata.cls").write_text(
        "public class NoMetadata {}"
    )

    result = check_package(copy)

    assert result.returncode == 1
    assert "NoMetadata.cls" in result.stderr


def test_a_file_of_no_metadata_type_fails_the_check(tmp_path: Path) -> None:
    copy = _copy_of_package(tmp_path)
    (copy / "force-app" / "main" / "default" / "flows" / "Notes.unknown-meta.xml").write_text("<Notes/>")

    result = check_package(copy)

    assert result.returncode == 1
    assert "Notes.unknown-meta.xml" in result.stderr


def test_a_placeholder_without_replacement_fails_the_check(tmp_path: Path) -> None:
    copy = _copy_of_package(tmp_path)
    named_credential = next(copy.rglob("Sfintacct_Intake.namedCredential-meta.xml"))
    named_credential.write_text(
        named_credential.read_text().replace("%%SFINTACCT_EVENTS_URL%%", "%%SFINTACCT_EVENT_URL%%")
    )

    result = check_package(copy)

    assert result.returncode == 1
    assert "placeholders left" in result.stderr


def test_example_values_are_not_real_endpoints() -> None:
    assert all(".invalid" in value for value in EXAMPLE_DEPLOY_ENVIRONMENT.values())
