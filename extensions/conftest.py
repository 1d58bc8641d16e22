"""The extensions' tests share tests/conftest.py's helpers and fixtures."""

from conftest import no_debian_fashion_mnist  # noqa: F401 (a fixture, used by name)
