"""An authentication backend, listed before ModelBackend, that refuses locked-out sign-ins.

Raising PermissionDenied stops Django from trying the next backends, so the password is not even
checked while locked (no oracle), and Django sends user_login_failed, which we audit. Otherwise it
returns None and ModelBackend checks the password as usual. It loads session users like
ModelBackend, because Django stores the first backend in sessions made by force_login().
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from apps.audit.lockout import lock_for
from apps.core.request_context import client_ip


class LockoutBackend:
    def authenticate(self, request, username=None, password=None, **kwargs):
        name = username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD)
        ip = client_ip(request) if request is not None else None
        lock = lock_for(username=name, ip=ip)
        if lock is not None:
            if request is not None:
                request.login_lock = lock
            raise PermissionDenied(lock.message)
        return None

    def get_user(self, user_id):
        return ModelBackend().get_user(user_id)
