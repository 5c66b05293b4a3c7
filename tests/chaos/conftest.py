# The chaos test runs on the integration suite's stack.
from tests.integration.conftest import emulator, forward_target, start_stack  # noqa: F401
