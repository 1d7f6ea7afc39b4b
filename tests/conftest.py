import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite('parity')  # the shared harness's asserts explain themselves
