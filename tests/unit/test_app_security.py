"""What every answer of the API carries, and what needs no network: the docs pages load their
Swagger UI / ReDoc assets from the server itself; security headers on the UI and the API;
paging parameters are bounded (a huge offset is a 422, not a database overflow)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.cli import upgrade_db
from app.core.config import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("app")
    url = f"sqlite:///{data / 'svc.db'}"
    upgrade_db(url)
    return TestClient(create_app(Settings(data_dir=data, database_url=url)))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_need_no_network(client, page):
    html = client.get(page)
    assert html.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
    assert assets, html.text
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by this server"
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 10_000, asset
    assert "cdn" not in html.text.lower()


def test_security_headers_on_the_ui_and_the_api(client):
    for path in ("/", "/api/v1/health"):
        h = client.get(path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp


def test_paging_is_bounded(client):
    from app.core.db import crud
    from app.core.db.session import session_scope

    with session_scope(client.app.state.settings.database_url) as s:
        user = crud.create_user(s, name="pager")
        token = crud.create_token(s, user=user, pepper=client.app.state.settings.token_pepper)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/jobs", params={"offset": 2**63}, headers=auth).status_code == 422
    assert client.get("/api/v1/jobs", params={"limit": 0}, headers=auth).status_code == 422
    assert client.get("/api/v1/jobs", params={"offset": 5}, headers=auth).json() == []
