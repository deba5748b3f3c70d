"""Paths and runners shared by the Salesforce package checks.

The node tools come from package.json (installed by `make setup`); a missing tool fails the test with
what to run, it never skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree as SafeElementTree

REPO_ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = REPO_ROOT / "salesforce"
FORCE_APP = PACKAGE_DIR / "force-app"
CLASSES_DIR = FORCE_APP / "main" / "default" / "classes"
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
CHECK_TOOL = REPO_ROOT / "tools" / "check-salesforce-package.mjs"
TOOL_TIMEOUT_SECONDS = 120

# Deploy-time values of the placeholders: reserved names (RFC 2606), nothing that exists.
EXAMPLE_DEPLOY_ENVIRONMENT = {
    "SFINTACCT_OUTBOUND_URL": "https://intake.example.invalid/prod/salesforce/outbound?token=example-token",
    "SFINTACCT_EVENTS_URL": "https://intake.example.invalid/prod/salesforce/events",
    "SFINTACCT_INTEGRATION_USERNAME": "sfintacct-sync@example.invalid",
    "SFINTACCT_CONTACT_EMAIL": "salesforce-admin@example.invalid",
}


def xml_root(path: Path) -> Element:
    root: Element | None = SafeElementTree.parse(path).getroot()
    assert root is not None, path
    return root


def metadata_files(root: Path = FORCE_APP) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not on PATH: install Node.js 20+ (make setup expects it)")
    return found


def node_tool(name: str) -> Path:
    node()  # the tools in node_modules/.bin start with "#!/usr/bin/env node"
    path = NODE_BIN / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing: run `npm install` (make setup does it)")
    return path


def run(
    command: list[str], *, extra_environment: Mapping[str, str] | None = None, without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root; `without` drops environment variables."""
    environment = {key: value for key, value in os.environ.items() if key not in without}
    environment.update(extra_environment or {})
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )


def check_package(
    project: Path = PACKAGE_DIR, *, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """tools/check-salesforce-package.mjs on `project`, with the example deploy-time values but `unset`."""
    library = REPO_ROOT / "node_modules" / "@salesforce" / "source-deploy-retrieve"
    if not library.is_dir():
        pytest.fail(f"{library.relative_to(REPO_ROOT)} is missing: run `npm install` (make setup does it)")
    environment = {key: value for key, value in EXAMPLE_DEPLOY_ENVIRONMENT.items() if key not in unset}
    return run(
        [node(), str(CHECK_TOOL), "--project", str(project)], extra_environment=environment, without=unset
    )


def write_package_project(root: Path, files: dict[str, str], *, workflow_object: str) -> Path:
    """A small SFDX project in `root`: these files under force-app/main/default, and one replacement
    (%%ENDPOINT%% from ENDPOINT_URL) in the workflow of `workflow_object`."""
    (root / "sfdx-project.json").write_text(
        json.dumps(
            {
                "packageDirectories": [{"path": "force-app", "default": True}],
                "replacements": [
                    {
                        "filename": f"force-app/main/default/workflows/{workflow_object}.workflow-meta.xml",
                        "stringToReplace": "%%ENDPOINT%%",
                        "replaceWithEnv": "ENDPOINT_URL",
                    }
                ],
            }
        )
    )
    for name, text in files.items():
        path = root / "force-app" / "main" / "default" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
