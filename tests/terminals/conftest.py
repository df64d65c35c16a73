"""Fixtures shared by the terminal tests."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def client(daemon):
    """An HTTP client for the daemon under test (no credentials: terminals have none)."""
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as c:
        yield c


@pytest.fixture
async def operator(daemon):
    """An HTTP client with the daemon's API key (the REST API is for operators)."""
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth, timeout=10) as c:
        yield c
