"""The test provider's claims (email, username, name, groups from the control file) and its
faults: an ID token with a wrong audience, already expired, or signed by a key it never
published."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django.db import router, transaction
from jwcrypto import jwk, jwt
from oauth2_provider.models import IDToken
from oauth2_provider.oauth2_validators import OAuth2Validator


def control() -> dict:
    return json.loads(Path(os.environ["IDP_CONTROL"]).read_text(encoding="utf-8"))


class ControlledValidator(OAuth2Validator):
    # Release every claim below whatever scopes were asked for (the groups claim included).
    oidc_claim_scope = None

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "preferred_username": user.username,
            "name": user.get_full_name() or user.username,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "groups": control().get("groups", {}).get(user.username, []),
        }

    def finalize_id_token(self, id_token, token, token_handler, request):
        fault = control().get("fault")
        if not fault:
            return super().finalize_id_token(id_token, token, token_handler, request)
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        key = request.client.jwk_key
        signing_key = key
        if fault == "wrong_audience":
            id_token["aud"] = "some-other-application"
        elif fault == "expired":
            id_token["iat"] = int(time.time()) - 7200
            id_token["exp"] = int(time.time()) - 3600
        elif fault == "bad_signature":
            # Same key id as the published key, different private key.
            signing_key = jwk.JWK.generate(kty="RSA", size=2048)
        header = {"typ": "JWT", "alg": "RS256", "kid": key.thumbprint()}
        token_jwt = jwt.JWT(header=json.dumps(header), claims=json.dumps(id_token, default=str))
        token_jwt.make_signed_token(signing_key)
        with transaction.atomic(using=router.db_for_write(IDToken)):
            saved = self._save_id_token(id_token["jti"], request, expiration_time)
        request.access_token = saved
        request.id_token = saved
        return token_jwt.serialize()
