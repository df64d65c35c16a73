import pytest

from gatewayd.connectors import CONNECTORS

from .helpers import TEST_CONNECTOR


@pytest.fixture
def daemon_connectors() -> tuple:
    return (*CONNECTORS, TEST_CONNECTOR)
