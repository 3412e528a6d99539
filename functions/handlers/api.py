"""API Lambda: the FastAPI app behind API Gateway's HTTP API, through Mangum.

Authentication here is only ever the claims API Gateway's JWT authorizer verified; there is no
switch that turns on another path (the local dev tokens live outside the deployed package).
"""

from mangum import Mangum

from functions.api.app import create_app
from functions.api.auth import GatewayClaimsAuthenticator

app = create_app(GatewayClaimsAuthenticator())
handler = Mangum(app, lifespan="off")
