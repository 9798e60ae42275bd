"""The login gate: the first call of ``app.py`` and of every page script.

``require_login(role=None)`` returns the signed-in :class:`CurrentUser`, or renders only the
login form and stops the script.  streamlit-authenticator 0.4.2 draws the form (its default
labels "Username", "Password", "Login") and decodes the signed re-login cookie; everything that
decides is ours (:mod:`secdash.auth`):

- the library's ``AuthenticationController`` is replaced by :class:`_Controller`, so the password
  is checked exactly as typed (the library strips it), unknown users cost one dummy bcrypt check,
  the (username, address) throttle runs before and after the check, and its permanent per-user
  lockout and its credentials-file rewrites never happen (it gets a dict, never a path);
- the cookie only carries a random session id; the server-side session table decides whether it
  is still valid (logout, password or role change, idle and absolute timeouts revoke it), and the
  session is re-checked on every gate call, not only at cookie login;
- register / forgot-password / forgot-username widgets are never rendered.

``session_alive()`` is for auto-refreshing fragments: it re-checks the server-side session
without counting as user activity.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import streamlit as st

from secdash import audit
from secdash import auth as core
from secdash.config import Config, ConfigError
from secdash.config import load as load_config
from secdash.errors import SecdashError

_LOG = logging.getLogger("secdash.auth")
_SID = "_secdash_sid"
_USER = "_secdash_user"
_ERROR = "_secdash_login_error"
_NOTICE = "_secdash_login_notice"
_SET_COOKIE = "_secdash_cookie_set"
_DELETE_COOKIE = "_secdash_cookie_delete"
_FORM_GEN = "_secdash_login_form"
_LIB_KEYS = ("name", "username", "authentication_status", "email", "roles")

GENERIC_FAILURE = "Invalid username or password."


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class CurrentUser:
    username: str
    role: str
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _current(user: core.User) -> CurrentUser:
    return CurrentUser(user.username, user.role, user.display_name)


def client_ip(cfg: Config) -> str:
    """The client's address: the configured proxy header (last hop) or the socket peer."""
    if cfg.auth.proxy_header:
        try:
            value = st.context.headers.get(cfg.auth.proxy_header)
        except Exception:  # noqa: BLE001 - no request context (tests, bare mode)
            value = None
        if isinstance(value, str) and value:
            return value.split(",")[-1].strip()[:64] or "unknown"
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001
        ip = None
    return ip if isinstance(ip, str) and ip else "local"


def _sessions(cfg: Config) -> core.SessionStore:
    return core.SessionStore.from_config(cfg.home, cfg.auth)


def _clear_state(*, logout: bool) -> None:
    for key in (_SID, _USER, _ERROR):
        st.session_state.pop(key, None)
    for key in _LIB_KEYS:
        st.session_state[key] = None
    st.session_state[_FORM_GEN] = st.session_state.get(_FORM_GEN, 0) + 1
    if logout:
        # streamlit-authenticator: no cookie re-login in this browser session any more.
        st.session_state["logout"] = True


def _establish(user: core.User, sid: str) -> None:
    st.session_state.pop(_ERROR, None)
    st.session_state[_SID] = sid
    st.session_state[_USER] = _current(user)
    st.session_state["authentication_status"] = True
    st.session_state["username"] = user.username
    st.session_state["name"] = user.display_name
    st.session_state["roles"] = [user.role]
    st.session_state["email"] = None
    st.session_state["logout"] = None


class _Controller:
    """Replaces streamlit-authenticator's AuthenticationController (same call shape)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def login(self, username=None, password=None, *args, token=None, **kwargs):
        if token is not None:
            return self._cookie_login(token)
        return self._form_login(username or "", password or "")

    def logout(self, callback=None) -> None:  # never reached: our own logout button is used
        logout()

    def _cookie_login(self, token: dict) -> None:
        cfg, now = self.cfg, _now()
        sid = token.get("sid") if isinstance(token, dict) else None
        check = _sessions(cfg).check(sid, now, touch=True)
        if check.ok and check.user is not None and check.user.username == token.get("username"):
            _establish(check.user, sid)
            audit.record(cfg.home, "session_resume", user=check.user.username, ip=client_ip(cfg), now=now)
        return None

    def _form_login(self, raw_username: str, password: str) -> bool:
        cfg, now = self.cfg, _now()
        home = cfg.home
        # Real usernames are at most 32 characters; a huge input must not bloat the state files.
        username = core.normalize_username(raw_username)[:64]
        ip = client_ip(cfg)
        if not username or not password:
            st.session_state[_ERROR] = GENERIC_FAILURE
            return False
        throttle = core.Throttle.from_config(home, cfg.auth)
        wait = throttle.check(username, ip, now)
        if wait > 0:
            audit.record(home, "login_throttled", user=username, ip=ip, now=now, retry_after=round(wait))
            st.session_state[_ERROR] = core.wait_message(wait)
            return False
        user = core.authenticate(home, username, password)
        if user is None:
            blocked = throttle.failure(username, ip, now)
            audit.record(home, "login_failure", user=username, ip=ip, now=now)
            if blocked:
                audit.record(home, "login_throttled", user=username, ip=ip, now=now, block_seconds=blocked)
                st.session_state[_ERROR] = core.wait_message(blocked)
            else:
                st.session_state[_ERROR] = GENERIC_FAILURE
            return False
        throttle.success(username, ip, now)
        sid = _sessions(cfg).create(user, now, ip=ip)
        _establish(user, sid)
        st.session_state[_SET_COOKIE] = True
        audit.record(home, "login", user=username, ip=ip, now=now, role=user.role)
        return True


def _cookie_token(cfg: Config, key: str, user: CurrentUser, sid: str, now: float) -> tuple[str, datetime]:
    import jwt  # PyJWT, a dependency of streamlit-authenticator

    expires = datetime.now() + timedelta(hours=cfg.auth.absolute_timeout_hours)
    token = jwt.encode(
        {"username": user.username, "sid": sid, "exp_date": now + cfg.auth.absolute_timeout_hours * 3600},
        key,
        algorithm="HS256",
    )
    return token, expires


def _load(cfg_only: bool = False) -> tuple[Config, str]:
    try:
        cfg = load_config()
        key = "" if cfg_only else core.load_secrets(cfg.home, create=True)["cookie_key"]
    except (ConfigError, SecdashError) as exc:
        # Details (paths, settings) go to the server's terminal, not to an unauthenticated visitor.
        _LOG.error("secdash cannot start: %s", exc)
        st.error("secdash cannot start: the server's configuration needs attention (see the server log).")
        st.stop()
    return cfg, key


def _end_session(cfg: Config, check: core.SessionCheck) -> None:
    username = check.user.username if check.user else None
    if check.reason in ("idle", "absolute"):
        audit.record(cfg.home, "session_timeout", user=username, ip=client_ip(cfg), reason=check.reason)
        if check.reason == "idle":
            st.session_state[_NOTICE] = (
                f"Your session ended after {cfg.auth.idle_timeout_minutes:g} minutes without activity. "
                "Please log in again."
            )
        else:
            st.session_state[_NOTICE] = "Your session reached its maximum length. Please log in again."
    else:
        audit.record(cfg.home, "session_revoked", user=username, ip=client_ip(cfg), reason=check.reason)
        st.session_state[_NOTICE] = "Your session is no longer valid. Please log in again."
    _clear_state(logout=True)
    st.session_state[_DELETE_COOKIE] = 1


def logout() -> None:
    """Revoke the server-side session, forget the login in this tab and delete the cookie."""
    cfg, _ = _load(cfg_only=True)
    user = st.session_state.get(_USER)
    _sessions(cfg).revoke(st.session_state.get(_SID))
    audit.record(cfg.home, "logout", user=user.username if user else None, ip=client_ip(cfg))
    _clear_state(logout=True)
    st.session_state[_DELETE_COOKIE] = 1


def _sidebar(cfg: Config, key: str, user: CurrentUser, now: float) -> None:
    with st.sidebar:
        slot = st.container()  # app.py draws the page links here, above the account box
        ctx = _run_marker()
        if ctx is not None:
            ctx._secdash_nav_slot = (ctx.cursors, slot)
        st.text(f"{user.username} ({user.role})")
        if st.button("Logout", key="secdash-logout", icon=":material/logout:"):
            logout()
            st.rerun()
        _set_cookie(cfg, key, user, now)


def _set_cookie(cfg: Config, key: str, user: CurrentUser, now: float) -> None:
    """After a form login: give the browser the signed cookie naming our session. Rendered again
    (same arguments, so not re-mounted) until the browser reports it, for at most a few runs:
    a rerun can unmount the component before its script ran."""
    pending = st.session_state.get(_SET_COOKIE)
    if not pending:
        return
    import extra_streamlit_components as stx

    if pending is True:
        token, expires = _cookie_token(cfg, key, user, st.session_state[_SID], now)
        pending = {"token": token, "expires": expires, "runs": 0}
    cm = stx.CookieManager(key="secdash-cookie-manager")
    live = cm.cookies if isinstance(cm.cookies, dict) else {}
    if live.get(cfg.auth.cookie_name) == pending["token"] or pending["runs"] >= 5:
        st.session_state.pop(_SET_COOKIE, None)
        return
    pending["runs"] += 1
    st.session_state[_SET_COOKIE] = pending
    cm.set(
        cfg.auth.cookie_name,
        pending["token"],
        key="secdash-cookie-set",
        expires_at=pending["expires"],
        secure=cfg.auth.cookie_secure or None,
        same_site="strict",
    )


def _login_screen(cfg: Config, key: str) -> bool:
    """Draw the login form (in a placeholder); True when a login succeeded during this run."""
    import streamlit_authenticator as stauth

    users = core.load_users(cfg.home)
    box = st.empty()
    with box.container():
        authenticator = stauth.Authenticate(
            core.credentials_for_library(users),  # a dict: the library never writes our users file
            cfg.auth.cookie_name,
            key,
            cookie_expiry_days=cfg.auth.absolute_timeout_hours / 24.0,
            auto_hash=False,
            login_sleep_time=0,  # our throttle limits guessing; no sleep on every render
        )
        authenticator.authentication_controller = _Controller(cfg)
        cookies = authenticator.cookie_controller.cookie_model
        cookies.set_cookie = lambda: None  # set once logged in, carrying our session id
        _delete_cookie(cfg, cookies.cookie_manager)
        notice = st.session_state.pop(_NOTICE, None)
        if notice:
            st.info(notice)
        # A new form key after each logout: fresh widgets, nothing typed earlier is kept.
        form_key = f"secdash-login-{st.session_state.get(_FORM_GEN, 0)}"
        authenticator.login(location="main", key=form_key, clear_on_submit=True)
        if st.session_state.get(_SID):
            box.empty()  # logged in (form or cookie): the page renders in this same run
            return True
        # Kept (not popped) until the next attempt: a rerun triggered by a component must not
        # make the message disappear.
        error = st.session_state.get(_ERROR)
        if error:
            st.error(error)
        if not users:
            st.info("No account exists yet. Create one with: python -m secdash setup")
    return False


def _delete_cookie(cfg: Config, manager) -> None:
    """After logout or an ended session: delete the browser's cookie (it is already useless:
    its server-side session is gone). Repeated for a few runs until the browser reports it gone,
    because a rerun can unmount the component before its script ran."""
    runs = st.session_state.get(_DELETE_COOKIE, 0)
    if not runs:
        return
    live = manager.cookies if isinstance(manager.cookies, dict) else {}
    if runs > 5 or (live and cfg.auth.cookie_name not in live):
        st.session_state.pop(_DELETE_COOKIE, None)
        return
    st.session_state[_DELETE_COOKIE] = runs + 1
    try:
        manager.delete(cfg.auth.cookie_name, key="secdash-cookie-delete")
    except KeyError:  # the library's manager only knows cookies it has read
        pass


def _enforce_role(user: CurrentUser, role: str | None) -> CurrentUser:
    if role is None or user.role == role or user.role == "admin":
        return user
    st.error("This page is only for administrators." if role == "admin" else f"This page needs the {role} role.")
    st.stop()
    raise AssertionError("unreachable")  # pragma: no cover


def _run_marker():
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        return get_script_run_ctx()
    except Exception:  # noqa: BLE001
        return None


def require_login(role: str | None = None) -> CurrentUser:
    """The signed-in user; otherwise render only the login form and stop the script.

    Call it first, before anything else is drawn, in app.py and in every page.  ``role="admin"``
    additionally refuses non-admins (admins may open every page).
    """
    ctx = _run_marker()
    if ctx is not None and getattr(ctx, "_secdash_gate", None) is ctx.cursors:
        # Already checked in this script run (app.py, then the page it runs).
        user = st.session_state.get(_USER)
        if user is None:
            st.stop()
        return _enforce_role(user, role)
    if ctx is not None:
        ctx._secdash_gate = ctx.cursors  # a new dict object per run
    cfg, key = _load()
    now = _now()
    sid = st.session_state.get(_SID)
    if sid:
        check = _sessions(cfg).check(sid, now, touch=True)
        if check.ok and check.user is not None:
            user = _current(check.user)
            st.session_state[_USER] = user
            _sidebar(cfg, key, user, now)
            return _enforce_role(user, role)
        _end_session(cfg, check)
    elif st.session_state.get(_USER) is not None:
        _clear_state(logout=False)
    if not _login_screen(cfg, key):
        st.stop()
    user = st.session_state[_USER]
    _sidebar(cfg, key, user, now)
    return _enforce_role(user, role)


def nav_slot():
    """The sidebar container reserved by the gate in this run for page links (else the sidebar)."""
    ctx = _run_marker()
    reserved = getattr(ctx, "_secdash_nav_slot", None) if ctx is not None else None
    if reserved is not None and reserved[0] is ctx.cursors:
        return reserved[1]
    return st.sidebar


def current_user() -> CurrentUser | None:
    """The user established by the gate in this session (no check; call require_login first)."""
    return st.session_state.get(_USER)


def session_alive() -> bool:
    """For auto-refreshing fragments: is the server-side session still valid?

    Does not count as user activity (no touch).  When it returns False the session has been
    ended; call ``st.rerun()`` so the gate shows the login form::

        @st.fragment(run_every=5)
        def live():
            if not session_alive():
                st.rerun()
            ...
    """
    sid = st.session_state.get(_SID)
    if not sid:
        return False
    try:
        cfg = load_config()
    except ConfigError:
        return False
    check = _sessions(cfg).check(sid, _now(), touch=False)
    if not check.ok:
        _end_session(cfg, check)
        return False
    return True
