"""``/api/openapi.json`` describes exactly the routes the engine serves, and
is a valid OpenAPI 3.1 document."""
from __future__ import annotations

from openapi_spec_validator import validate

from apikit import serve, routes
from sipagent.api.openapi import OPERATIONS, document


def test_every_route_is_documented_and_every_documented_route_exists(tmp_path):
    served = routes(tmp_path)
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert not served - documented, f"routes missing from the OpenAPI table: {sorted(served - documented)}"
    assert not documented - served, f"documented routes the app lacks: {sorted(documented - served)}"
    assert len(documented) == len(OPERATIONS), "an operation is listed twice"


def test_the_document_is_valid_openapi_and_served_without_credentials(tmp_path, ports):
    validate(document())

    async def scenario(client, engine):
        response = await client.get("/api/openapi.json")
        assert response.status == 200
        return await response.json()

    served = serve(tmp_path, ports, scenario)
    assert served == document()
    body = served["paths"]["/api/calls/{call}/transfer"]["post"]["requestBody"]
    schema = served["components"]["schemas"]["TransferBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/TransferBody")
    assert schema["properties"]["target"]["maxLength"] == 256
