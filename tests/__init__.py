"""The test suite; helpers shared by test modules live in ``tests.support``."""

import pytest

# Helpers in tests.support assert too: pytest explains their failures as it does in tests.
pytest.register_assert_rewrite("tests.support")
