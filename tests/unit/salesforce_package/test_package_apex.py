"""The Apex classes parse, with the Apex parser of prettier-plugin-apex (Salesforce's own jorje parser,
run as a native executable or on Java; no network), and are formatted as prettier formats them.

Apex compiles only in an org: `sf project deploy validate` compiles it and runs the Apex tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from sfpkg_support import CLASSES_DIR, PACKAGE_DIR, node_tool, run


def _prettier_check(*paths: Path) -> tuple[int, str]:
    prettier = node_tool("prettier")
    result = run([str(prettier), "--check", *(str(path) for path in paths)])
    return result.returncode, result.stdout + result.stderr


def test_apex_parses_and_is_formatted() -> None:
    classes = sorted(CLASSES_DIR.glob("*.cls"))
    assert [path.name for path in classes] == ["SfintacctSyncCallout.cls", "SfintacctSyncCalloutTest.cls"]

    returncode, output = _prettier_check(*classes)

    assert returncode == 0, output


def test_a_syntax_error_fails_the_check(tmp_path: Path) -> None:
    shutil.copy(PACKAGE_DIR / ".prettierrc", tmp_path / ".prettierrc")
    source = (CLASSES_DIR / "SfintacctSyncCallout.cls").read_text()
    (tmp_path / "Copy.cls").write_text(source)
    broken = tmp_path / "Broken.cls"
    broken.write_text(source.replace("Blob key) {", "Blob key {", 1))

    assert _prettier_check(tmp_path / "Copy.cls")[0] == 0
    returncode, output = _prettier_check(broken)

    assert returncode == 2, output
    assert "Broken.cls" in output
    assert "Missing ')'" in output
