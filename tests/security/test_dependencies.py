"""Finding 12: dependencies. The lower bounds in pyproject.toml sit above the versions with known
vulnerabilities, and requirements.lock (what `make` and CI install, with hashes) pins every
dependency at a version those bounds allow."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

#: The first version without the advisories named, for what faces the internet or staff input.
SAFE_FROM = {
    "jinja2": "3.1.6",            # CVE-2024-56201, CVE-2024-56326, CVE-2025-27516 (sandbox)
    "aiosmtpd": "1.4.6",          # CVE-2024-27305 (SMTP smuggling), CVE-2024-34083
    "starlette": "0.49.1",        # CVE-2024-47874, CVE-2025-54121, CVE-2025-62727
    "python-multipart": "0.0.22",  # CVE-2024-24762, CVE-2024-53981, CVE-2026-24486
    "h11": "0.16.0",              # CVE-2025-43859
    "cryptography": "44.0.1",     # CVE-2024-12797
    "authlib": "1.7.2",           # CVE-2025-59420, CVE-2026-28802 (alg none), CVE-2026-27962
}
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in
            [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def locked() -> dict[str, tuple[Version, int]]:
    """{package: (pinned version, number of hashes)} from requirements.lock."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (Version(match[2]), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_lower_bounds_are_above_known_vulnerable_versions():
    bounds = {canonicalize_name(r.name): r.specifier for r in declared()}
    for name, safe in SAFE_FROM.items():
        assert name in bounds, f"{name} needs a bound in pyproject.toml"
        lowest = [Version(s.version) for s in bounds[name] if s.operator in (">=", ">", "==")]
        assert lowest and min(lowest) >= Version(safe), f"{name}: {bounds[name]} allows < {safe}"


def test_the_lock_pins_everything_declared_with_hashes():
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock (run make lock)"
        assert requirement.specifier.contains(pins[name][0]), (name, pins[name][0])
    assert "setuptools" in pins  # the build back-end, for --no-build-isolation
    assert all(hashes > 0 for _version, hashes in pins.values())


def test_make_and_ci_install_from_the_lock():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
