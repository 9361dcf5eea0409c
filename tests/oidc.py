"""A small OpenID Connect provider for the sign-in tests, on loopback: ``python -m tests.oidc PORT``.

It speaks the authorization-code flow the way a real provider does (discovery document, JWKS,
an authorize page where one types the email to sign in as, a token endpoint that checks the
client secret and the PKCE verifier and returns an RS256-signed ID token, userinfo), so
Streamlit's real ``st.login`` (Authlib) signs in against it. Tokens are signed with joserfc,
the JOSE library Authlib itself uses. Like Streamlit's own end-to-end tests, it trusts whatever
email is typed: it is a stand-in for Google or Keycloak, not a password store.

The address is passed on as typed (a real provider sends the account's address as it was
written). The authorize form also takes an account id (``sub``; default: derived from the
address) and whether the address is verified (``email_verified``: ``true`` by default,
``false``, or ``omit`` to leave the claim out), so the security tests can play a self-service
account with someone else's unverified address, or a second account claiming a known one.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "dlcore-test"
CLIENT_SECRET = "test-client-secret"


class Provider:
    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.lock = threading.Lock()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def claims(self, grant: dict) -> dict:
        email = grant["email"]
        verified = {"false": False, "omit": None}.get(grant.get("email_verified", "true"), True)
        return {"sub": grant.get("sub") or hashlib.sha256(email.encode()).hexdigest()[:24], "email": email,
                "email_verified": verified, "name": email.strip().split("@")[0].title()}

    def id_token(self, grant: dict) -> str:
        now = int(time.time())
        claims = {**self.claims(grant), "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 3600,
                  "nonce": grant.get("nonce")}
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, {k: v for k, v in claims.items() if v is not None},
                          self.key)


FORM = """<!doctype html><html><head><title>Test sign-in</title></head><body>
<h1>Sign in to the test provider</h1>
<form method="post" action="/authorize">{hidden}
<label>Email <input name="email" type="email" autofocus></label>
<label>Account id <input name="sub"></label>
<label>Address checked <select name="email_verified"><option>true</option><option>false</option>
<option>omit</option></select></label>
<button type="submit">Continue</button></form></body></html>"""


def handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes | str | dict, kind: str = "application/json",
                  headers: dict | None = None) -> None:
            data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.discovery())
            elif url.path == "/jwks":
                self._send(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                if query.get("client_id") != CLIENT_ID or not query.get("redirect_uri"):
                    self._send(400, "unknown client or no redirect_uri", "text/plain")
                    return
                keep = ("client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method")
                hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(query[k])}">'
                                 for k in keep if k in query)
                self._send(200, FORM.format(hidden=hidden), "text/html")
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                grant = provider.tokens.get(token)
                if grant:
                    self._send(200, {k: v for k, v in provider.claims(grant).items() if v is not None})
                else:
                    self._send(401, {"error": "invalid_token"})
            elif url.path == "/logout":
                target = query.get("post_logout_redirect_uri") or "/"
                self._send(302, b"", "text/plain", {"Location": target})
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            form = self._form()
            if url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                with provider.lock:
                    provider.codes[code] = {**form, "email": form.get("email", "")}
                target = form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
                self._send(302, b"", "text/plain", {"Location": target})
            elif url.path == "/token":
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
                if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                    self._send(401, {"error": "invalid_client"})
                    return
                with provider.lock:
                    grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or grant.get("redirect_uri") != form.get("redirect_uri"):
                    self._send(400, {"error": "invalid_grant"})
                    return
                if grant.get("code_challenge"):
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                    if digest != grant["code_challenge"]:
                        self._send(400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"})
                        return
                access_token = secrets.token_urlsafe(24)
                provider.tokens[access_token] = grant
                self._send(200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
                                 "id_token": provider.id_token(grant), "scope": "openid email profile"})
            else:
                self._send(404, {"error": "not_found"})

    return Handler


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(Provider(port)))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
