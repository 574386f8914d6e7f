"""pytest plugins shared by the test suite (loaded from tests/conftest.py)."""
