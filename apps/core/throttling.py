"""Rate limits per API token and per client IP (429 with Retry-After), shared by the REST API,
the MCP endpoint and OAuth client registration, so the doors count against the same limits.

Rates come from settings.API_THROTTLE_RATES, read on each request so tests and operators can
change them. The client address is apps.core.request_context.client_ip (X-Forwarded-For only
from trusted proxies). Counters live in the default cache: use a shared cache (CACHE_URL=redis://…) when
running several processes, or each process counts on its own.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.models import ApiToken
from apps.core.request_context import client_ip


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)


class TokenRateThrottle(_SettingsRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None

    def allow_request(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.agent_id and token.agent.rate_limit:
            # A registered agent's own rate, counted over all of its tokens (apps.agents).
            self.rate = token.agent.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
            self.key = self.cache_format % {"scope": "agent", "ident": token.agent_id}
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) >= self.num_requests:
                return self.throttle_failure()
            return self.throttle_success()
        return super().allow_request(request, view)


class IPRateThrottle(_SettingsRateThrottle):
    """Every request, signed in or not, counts against its client IP."""

    scope = "ip"

    def get_ident(self, request):
        # DRF's own get_ident believes any X-Forwarded-For, so a client could send a new address
        # with every request. The project decides the client address in one place instead:
        # REMOTE_ADDR, or the address the trusted proxies saw (CONTEXTKB_TRUSTED_PROXY_COUNT).
        return client_ip(request) or "unknown"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
