"""Acceptance 4: .funcignore keeps tests, dev tools, benchmarks and infra out of
the deployment package, and keeps what the Functions host needs in."""

from __future__ import annotations

import ast
import pathlib

import pytest

from tests.infra.bicep import ROOT
from tests.infra.package import IgnoreRules, load_rules, package_files, project_files

FUNCIGNORE = ROOT / ".funcignore"

# What the package may hold: the entry point, host config, dependencies, the app package.
DEPLOYED_ROOTS = {"function_app.py", "host.json", "requirements.txt", "shared"}

MUST_BE_IN = ["function_app.py", "host.json", "requirements.txt", "shared/__init__.py", "shared/config.py",
              "shared/triggers/health.py"]

# Dev-only paths, present or not in this checkout (gitignored ones are never listed by git).
MUST_BE_OUT = [
    "tests/conftest.py", "tests/infra/test_funcignore.py",
    "devhost/__main__.py", "devtools/anything.py", "graphsim/server.py", "bench/bench_cold_start.py",
    "infra/main.bicep", "infra/modules/storage.bicep", "infra/check.sh", "infra/.checkov.yaml",
    "docs/DEPLOY.md", "README.md", "Makefile", "pyproject.toml", "requirements-dev.txt", "azure.yaml",
    "node_modules/azurite/package.json", "package.json", "package-lock.json",
    ".venv/bin/python", ".venv-infra/bin/checkov", ".data/calendar.db", ".data/secrets/client-secret",
    "local.settings.json", "local.settings.sample.json", ".azure/dev/.env",
    "shared/__pycache__/config.cpython-311.pyc", ".pytest_cache/v/cache", ".ruff_cache/CACHEDIR.TAG",
    ".git/HEAD", ".gitignore", ".ci/run", ".funcignore",
]

# The project's own top-level Python packages that must never be imported by deployed code.
DEV_PACKAGES = {"tests", "devhost", "devtools", "graphsim", "bench"}


@pytest.fixture(scope="module")
def rules():
    return load_rules(FUNCIGNORE)


@pytest.fixture(scope="module")
def package(rules):
    return package_files(ROOT, set(project_files(ROOT)) | set(MUST_BE_IN) | set(MUST_BE_OUT), rules)


def test_host_files_and_app_package_are_deployed(package):
    missing = [path for path in MUST_BE_IN if path not in package]
    assert not missing, f".funcignore excludes files the Functions host needs: {missing}"
    shared = [path for path in project_files(ROOT) if path.startswith("shared/") and path.endswith(".py")]
    assert shared and all(path in package for path in shared), "every shared/**/*.py is deployed"


def test_dev_files_are_not_deployed(package):
    leaked = [path for path in MUST_BE_OUT if path in package]
    assert not leaked, f".funcignore lets dev-only files into the package: {leaked}"


def test_package_holds_only_the_app(package):
    unexpected = sorted({path.split("/")[0] for path in package} - DEPLOYED_ROOTS)
    assert not unexpected, (
        f"these would be deployed: {unexpected}; exclude them in .funcignore or, if the app needs "
        "them at runtime, add them to DEPLOYED_ROOTS"
    )


def test_deployed_code_imports_no_dev_package(package):
    for path in package:
        if not path.endswith(".py"):
            continue
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            bad = {name.split(".")[0] for name in names} & DEV_PACKAGES
            assert not bad, f"{path}:{node.lineno} imports {sorted(bad)}, which is not deployed"


@pytest.mark.parametrize(
    ("lines", "path", "excluded"),
    [
        (["tests/"], "tests/a.py", True),
        (["tests/"], "shared/tests.py", False),
        (["tests/"], "shared/tests/a.py", True),  # unanchored: any depth
        (["/tests/"], "shared/tests/a.py", False),  # leading slash anchors
        (["docs/x.md"], "docs/x.md", True),
        (["docs/x.md"], "a/docs/x.md", False),  # a middle slash anchors too
        (["*.md"], "shared/README.md", True),
        (["*.py[cod]"], "shared/__pycache__/x.pyc", True),
        (["__pycache__/"], "shared/__pycache__/x.pyc", True),
        ([".venv*/"], ".venv-infra/bin/checkov", True),
        ([".venv*/"], ".venvrc", False),  # directory-only pattern
        (["**/fixtures/*.json"], "a/b/fixtures/x.json", True),
        (["*.md", "!KEEP.md"], "KEEP.md", False),  # negation
        (["docs/", "!docs/x.md"], "docs/x.md", True),  # no re-include inside an excluded folder
        (["# comment", "", "a?c"], "abc", True),
    ],
)
def test_fallback_matcher_follows_gitignore_rules(lines, path, excluded):
    assert IgnoreRules(lines).match_file(path) is excluded


def test_fallback_matcher_agrees_with_pathspec_when_installed():
    pathspec = pytest.importorskip("pathspec")
    lines = FUNCIGNORE.read_text(encoding="utf-8").splitlines()
    reference = pathspec.GitIgnoreSpec.from_lines(lines)
    ours = IgnoreRules(lines)
    for path in set(project_files(ROOT)) | set(MUST_BE_IN) | set(MUST_BE_OUT):
        assert ours.match_file(path) == reference.match_file(path), path


def test_funcignore_is_at_the_project_root():
    # azure.yaml deploys project "." and Core Tools reads .funcignore from the app folder.
    assert FUNCIGNORE.is_file()
    assert isinstance(load_rules(FUNCIGNORE, prefer_pathspec=False), IgnoreRules)
    assert pathlib.Path(ROOT / "function_app.py").is_file()
