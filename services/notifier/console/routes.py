"""The console's HTTP routes (server-rendered HTML under ``/console``).

    GET  /console/login            sign-in form (open)
    POST /console/login            key → session cookie, 303 to the page asked for (open)
    POST /console/logout           ends the session (CSRF-checked; open)
    GET  /console                  Now: open breaches, filters ?agreement=&severity=&acked=
    GET  /console/table            the Now table's rows alone (what the live page fetches)
    GET  /console/events           server-sent events: ``changed`` when breaches or acks do
    GET  /console/breaches/{id}    one breach: facts, ack form, timeline
    POST /console/breaches/{id}/ack  ack with a comment (CSRF-checked; breaches:ack)
    GET  /console/silences         active and coming silences and maintenance windows,
                                   each with the open breaches it mutes now
    GET  /console/silences/new?match=   the create form (prefilled from a breach page)
    POST /console/silences         create one, or (``action=preview``) show the open
                                   breaches its matchers would mute (CSRF-checked;
                                   breaches:ack)
    POST /console/silences/{id}/expire   end one now (CSRF-checked; breaches:ack)
    GET  /console/agreements       each agreement's objectives this period: attainment,
                                   budget left, open breaches, credit exposure (reports:read)
    GET  /console/agreements/{name}/report?period=   the period report page (reports:read)

Every route but sign-in and sign-out declares its scope with :class:`ConsoleRequire`
(a :class:`~shared.http.auth.Require`, so ``check_guarded`` and the route table see
it): without a session it answers 303 to the sign-in page, without the scope 403,
never data. The key is checked on every request against the keys the service accepts
now (``app.state.authenticator.keys``), so revoking it ends the session.

Every page carries a Content-Security-Policy that admits only its own inline style
and script (a fresh nonce per response), same-origin fetches and forms.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import secrets
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from services.notifier import acks
from services.notifier.api import Lifecycle
from services.notifier.catalog import load_windows
from services.notifier.console.chart import HEIGHT as CHART_HEIGHT
from services.notifier.console.chart import MINUTE_MS, Chart, Minute, sli_chart
from services.notifier.console.chart import WIDTH as CHART_WIDTH
from services.notifier.console.session import BadSession, Claims, SessionCodec, new_nonce
from services.notifier.console.views import (
    SEVERITY_ORDER,
    AckView,
    AttemptLine,
    BadMatchers,
    BreachView,
    DeliveryLine,
    Filters,
    ago_text,
    breach_matchers,
    breach_view,
    iso,
    matchers_text,
    muted_now,
    now_rows,
    parse_matchers,
    timeline,
    unacked_pages,
    utc_text,
)
from services.notifier.outbox import dt_to_ms
from services.notifier.reports import render as render_report
from services.notifier.reports.compute import ObjectiveReport, Report
from services.notifier.reports.exceptions import BadPeriod, ReportError, UnknownAgreement
from services.notifier.reports.store import report_for
from services.notifier.values import budget_text, duration_text, measure_of, percent, ratio_texts
from shared.apikeys import tokens
from shared.apikeys.scopes import Scope, grants
from shared.definitions.load import DefinitionsInvalid
from shared.definitions.model import Agreement
from shared.definitions.store import load_catalog
from shared.http.app import add_home_link
from shared.http.auth import Authenticator, Require
from shared.models import (
    BreachAck,
    BreachEventRecord,
    BreachRecord,
    Delivery,
    DeliveryAttempt,
    NotifierSilence,
    SliRollup,
)
from shared.timeutil import parse_duration_ms

log = logging.getLogger(__name__)

SESSION_COOKIE = "slawatch_console"
LOGIN_COOKIE = "slawatch_console_login"
COOKIE_PATH = "/console"
LOGIN_PATH = "/console/login"
#: How often the event stream looks for changes (the page refreshes within 2 s).
POLL_MS = 1_000
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_MS = 15_000
#: The acknowledgement's ``via``: the console, as ``api`` and ``link`` name theirs.
VIA = "console"
MAX_FORM_BYTES = 8_192
NONE = "'none'"
STALE_FORM = "The form expired or came from elsewhere: send it from the page again."


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs beyond the app: the database, the ack path's lifecycle
    (clock, metrics, doorbell), the session codec and whether cookies are ``Secure``."""

    sessions: async_sessionmaker[AsyncSession]
    life: Lifecycle
    codec: SessionCodec
    secure_cookies: bool
    poll_ms: int = POLL_MS


@dataclass(frozen=True)
class ConsolePrincipal:
    """The signed-in key (as it is now) and its session cookie."""

    name: str
    scopes: frozenset[Scope]
    cookie: str

    def may(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)


class SignInNeeded(Exception):
    """No valid session: answered with a 303 to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleForbidden(Exception):
    """The session's key lacks the scope: answered with a 403 page."""

    def __init__(self, principal: ConsolePrincipal, scope: Scope) -> None:
        super().__init__(scope.value)
        self.principal = principal
        self.scope = scope


def _config(request: Request) -> ConsoleConfig:
    config: ConsoleConfig = request.app.state.console
    return config


def session_principal(request: Request) -> ConsolePrincipal | None:
    """The principal of the request's session, or None (none, forged, expired, or the
    key is revoked or expired now)."""
    config = _config(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    now = config.life.clock()
    try:
        claims: Claims = config.codec.read(cookie, now)
    except BadSession:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    entry = authenticator.keys.find(claims.key_digest)
    if entry is None or entry.name != claims.key_name:
        return None
    if entry.expires_at_ms is not None and now >= entry.expires_at_ms:
        return None
    authenticator.keys.used(entry.name, now)
    return ConsolePrincipal(entry.name, entry.scopes, cookie)


class ConsoleRequire(Require):
    """The console's :func:`~shared.http.auth.require`: a session whose key holds
    ``scope`` (read by the route-coverage check like any ``Require``)."""

    async def __call__(self, request: Request) -> ConsolePrincipal:  # type: ignore[override]
        principal = session_principal(request)
        if principal is None:
            # Back to the page after signing in; a form's target is no page (a GET of
            # it would be refused), so a stale form post returns to Now.
            target = request.url.path if request.method == "GET" else COOKIE_PATH
            if request.method == "GET" and request.url.query:
                target += "?" + request.url.query
            raise SignInNeeded(target)
        if not principal.may(self.scope):
            raise ConsoleForbidden(principal, self.scope)
        return principal

    def __repr__(self) -> str:
        return f"console_require({self.scope.value!r})"


_CONSOLE_REQUIRES = {scope: ConsoleRequire(scope) for scope in Scope}
Reader = Annotated[ConsolePrincipal, Depends(_CONSOLE_REQUIRES[Scope.BREACHES_READ])]
Acker = Annotated[ConsolePrincipal, Depends(_CONSOLE_REQUIRES[Scope.BREACHES_ACK])]
ReportReader = Annotated[ConsolePrincipal, Depends(_CONSOLE_REQUIRES[Scope.REPORTS_READ])]


def content_security_policy(nonce: str) -> str:
    """Only the page's own nonce'd style and script; fetches, forms and the event
    stream to this origin; nothing framed, nothing else loaded."""
    return (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'self'; img-src 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if not value or not value.startswith(COOKIE_PATH) or value.startswith("//"):
        return COOKIE_PATH
    if any(c in value for c in "\\\r\n"):
        return COOKIE_PATH
    return value


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body, first value of each field."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return {}
    parsed = urllib.parse.parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def console_router(config: ConsoleConfig) -> APIRouter:
    """The console's routes (module docstring) over ``config``."""
    env = _environment()
    router = APIRouter(prefix=COOKIE_PATH, include_in_schema=False)

    def render(
        template: str,
        status: int = 200,
        principal: ConsolePrincipal | None = None,
        **context: Any,
    ) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        now = config.life.clock()

        def since(ms: int) -> Markup:
            span = f"in {ago_text(ms - now)}" if ms > now else f"{ago_text(now - ms)} ago"
            return Markup(
                '<time datetime="{iso}" data-ms="{ms}"><span class="abs">{utc}</span> '
                '<span class="rel">({span})</span></time>'
            ).format(iso=iso(ms), ms=ms, utc=utc_text(ms), span=span)

        csrf = config.codec.csrf_token(principal.cookie) if principal else ""
        page = env.get_template(template).render(
            nonce=nonce, principal=principal, csrf=csrf, since=since, **context
        )
        return HTMLResponse(page, status, headers=_page_headers(nonce))

    def set_cookie(response: Response, name: str, value: str, max_age_s: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age_s,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=config.secure_cookies,
        )

    def login_page(next_path: str, error: str | None = None, status: int = 200) -> Response:
        nonce = new_nonce()
        response = render(
            "login.html",
            status,
            next=safe_next(next_path),
            error=error,
            login_csrf=config.codec.login_token(nonce),
        )
        set_cookie(response, LOGIN_COOKIE, nonce, 3_600)
        return response

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return login_page(request.query_params.get("next", COOKIE_PATH))

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        next_path = safe_next(form.get("next"))
        if not config.codec.login_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return login_page(next_path, "The form expired or came from elsewhere: try again.", 403)
        key = form.get("key", "").strip()
        authenticator: Authenticator = request.app.state.authenticator
        entry = authenticator.keys.find(tokens.digest(key)) if tokens.well_formed(key) else None
        now = config.life.clock()
        if entry is None or (entry.expires_at_ms is not None and now >= entry.expires_at_ms):
            log.info("console sign-in refused")
            return login_page(next_path, "Unknown, revoked or expired API key.", 401)
        cookie = config.codec.issue(entry.name, entry.digest, now, entry.expires_at_ms)
        response = RedirectResponse(next_path, 303)
        set_cookie(response, SESSION_COOKIE, cookie, max(1, config.codec.ttl_ms // 1000))
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        log.info("console sign-in", extra={"actor": entry.name})
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        principal = session_principal(request)
        if principal is not None and not config.codec.csrf_ok(principal.cookie, form.get("csrf")):
            return render(
                "message.html",
                403,
                principal,
                heading="Not signed out",
                text="The form expired or came from elsewhere: sign out from the page again.",
            )
        response = RedirectResponse(LOGIN_PATH, 303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    async def agreements_now(session: AsyncSession) -> Mapping[str, Agreement]:
        try:
            return (await load_catalog(session)).agreements
        except (DefinitionsInvalid, SQLAlchemyError):
            # The SLI then reads by the breach's rule alone (as messages do).
            return {}

    async def open_views(session: AsyncSession) -> list[BreachView]:
        rows = (
            await session.execute(
                select(BreachRecord, BreachAck)
                .outerjoin(BreachAck, BreachAck.breach_id == BreachRecord.id)
                .where(BreachRecord.status == "open")
            )
        ).all()
        agreements = await agreements_now(session)
        return [breach_view(b, _ack_view(a), agreements) for b, a in rows]

    async def now_context(request: Request) -> dict[str, Any]:
        filters = Filters.parse(request.query_params)
        async with config.sessions() as session:
            views = await open_views(session)
        rows = now_rows(views, filters)
        unacked = unacked_pages(views)
        query = urllib.parse.urlencode(filters.query())
        return {
            "rows": rows,
            "unacked": unacked,
            "filters": filters,
            "filtered": bool(filters.query()),
            "agreements": sorted({v.agreement for v in views}),
            "severities": SEVERITY_ORDER,
            "title": (f"({unacked}) " if unacked else "") + "Now · slawatch console",
            "table_url": f"{COOKIE_PATH}/table" + (f"?{query}" if query else ""),
        }

    @router.get("")
    async def now_page(request: Request, principal: Reader) -> Response:
        return render("now.html", 200, principal, **await now_context(request))

    @router.get("/table")
    async def now_table(request: Request, principal: Reader) -> Response:
        return render("_table.html", 200, principal, **await now_context(request))

    @router.get("/events")
    async def events(request: Request, principal: Reader) -> Response:
        return StreamingResponse(
            _event_stream(request, config),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/breaches/{breach_id}")
    async def detail(breach_id: str, principal: Reader) -> Response:
        async with config.sessions() as session:
            row = await session.get(BreachRecord, breach_id)
            if row is None:
                return render(
                    "message.html",
                    404,
                    principal,
                    heading="No such breach",
                    text=f"No breach has the id {breach_id}.",
                )
            ack = _ack_view(await session.get(BreachAck, breach_id))
            agreements = await agreements_now(session)
            events = (
                await session.execute(
                    select(BreachEventRecord)
                    .where(BreachEventRecord.breach_id == breach_id)
                    .order_by(BreachEventRecord.at, BreachEventRecord.recorded_at)
                )
            ).scalars()
            deliveries = await _delivery_lines(session, breach_id)
            entries = timeline(events, deliveries, ack)
        view = breach_view(row, ack, agreements)
        chart, chart_span = await _chart(config, view)
        may_ack = principal.may(Scope.BREACHES_ACK)
        silence_url = f"{COOKIE_PATH}/silences/new?" + urllib.parse.urlencode(
            {"match": matchers_text(breach_matchers(view))}
        )
        return render(
            "detail.html",
            200,
            principal,
            b=view,
            entries=entries,
            can_ack=may_ack and view.status == "open",
            silence_url=silence_url if may_ack else None,
            chart=chart,
            chart_span=chart_span,
            chart_size=(CHART_WIDTH, CHART_HEIGHT),
            duration=duration_text,
            utc=_hhmm,
        )

    @router.post("/breaches/{breach_id}/ack")
    async def ack(breach_id: str, request: Request, principal: Acker) -> Response:
        form = await _form(request)
        if not config.codec.csrf_ok(principal.cookie, form.get("csrf")):
            return render(
                "message.html",
                403,
                principal,
                heading="Not acknowledged",
                text="The form expired or came from elsewhere: acknowledge from the page again.",
            )
        by = (form.get("by", "").strip() or principal.name)[:256]
        comment = form.get("comment", "").strip()[:2048] or None
        async with config.sessions() as session, session.begin():
            outcome = await acks.acknowledge(
                session, breach_id, by, comment, VIA, config.life.clock(), principal.name
            )
        if not outcome.found:
            return render(
                "message.html",
                404,
                principal,
                heading="No such breach",
                text=f"No breach has the id {breach_id}.",
            )
        if outcome.created:
            if config.life.metrics is not None:
                config.life.metrics.acks.labels(VIA).inc()
            if outcome.deliveries:
                config.life.on_enqueued()
            log.info(
                "breach acknowledged",
                extra={"breach_id": breach_id, "via": VIA, "actor": principal.name},
            )
        path = f"{COOKIE_PATH}/breaches/{urllib.parse.quote(breach_id, safe='')}"
        return RedirectResponse(path, 303)

    @router.get("/silences")
    async def silences_page(principal: Reader) -> Response:
        now = config.life.clock()
        async with config.sessions() as session:
            views = await open_views(session)
            api_rows = (
                await session.execute(
                    select(NotifierSilence)
                    .where(NotifierSilence.ends_at > now)
                    .order_by(NotifierSilence.starts_at, NotifierSilence.id)
                )
            ).scalars()
            lines = [
                SilenceLine(
                    r.id,
                    f"console/API silence by {r.created_by}",
                    dict(r.matchers),
                    r.starts_at,
                    r.ends_at,
                    r.comment,
                    r.starts_at <= now,
                    muted_now(dict(r.matchers), views) if r.starts_at <= now else [],
                )
                for r in api_rows
            ]
            for w in await load_windows(session):
                if w.end > now:
                    active = w.active(now)
                    muted = muted_now(dict(w.match), views) if active else []
                    lines.append(
                        SilenceLine(
                            None, w.source, dict(w.match), w.start, w.end, None, active, muted
                        )
                    )
        lines.sort(key=lambda line: (line.starts_at, line.source))
        return render(
            "silences.html",
            200,
            principal,
            silences=lines,
            can_silence=principal.may(Scope.BREACHES_ACK),
        )

    async def new_silence_page(
        principal: ConsolePrincipal,
        fields: Mapping[str, str],
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        text = fields.get("match", "")
        preview: list[BreachView] | None = None
        if error is None and text.strip():
            try:
                match = parse_matchers(text)
            except BadMatchers as exc:
                error, status = str(exc), 422
            else:
                async with config.sessions() as session:
                    preview = muted_now(match, await open_views(session))
        return render(
            "silence_new.html",
            status,
            principal,
            match=text,
            duration=fields.get("duration", "") or "1h",
            comment=fields.get("comment", ""),
            error=error,
            preview=preview,
        )

    @router.get("/silences/new")
    async def new_silence(request: Request, principal: Acker) -> Response:
        return await new_silence_page(principal, request.query_params)

    @router.post("/silences")
    async def create_silence(request: Request, principal: Acker) -> Response:
        form = await _form(request)
        if not config.codec.csrf_ok(principal.cookie, form.get("csrf")):
            return await new_silence_page(principal, form, STALE_FORM, 403)
        try:
            match = parse_matchers(form.get("match", ""))
        except BadMatchers as exc:
            return await new_silence_page(principal, form, str(exc), 422)
        if not match:
            # One typo away from muting every alert at 3 a.m.: the console asks for one.
            return await new_silence_page(principal, form, "give at least one matcher", 422)
        if form.get("action") == "preview":
            return await new_silence_page(principal, form)
        try:
            duration_ms = parse_duration_ms(form.get("duration", "").strip())
        except ValueError as exc:
            return await new_silence_page(principal, form, f"duration: {exc}", 422)
        if duration_ms <= 0:
            return await new_silence_page(principal, form, "duration: must be positive", 422)
        now = config.life.clock()
        row = NotifierSilence(
            id=str(uuid.uuid4()),
            matchers=match,
            starts_at=now,
            ends_at=now + duration_ms,
            created_by=(form.get("by", "").strip() or principal.name)[:256],
            comment=form.get("comment", "").strip()[:2048] or None,
            created_at=now,
            actor=principal.name,
        )
        async with config.sessions() as session, session.begin():
            session.add(row)
        log.info("silence created", extra={"silence_id": row.id, "actor": principal.name})
        return RedirectResponse(f"{COOKIE_PATH}/silences", 303)

    @router.post("/silences/{silence_id}/expire")
    async def expire_silence(silence_id: str, request: Request, principal: Acker) -> Response:
        form = await _form(request)
        if not config.codec.csrf_ok(principal.cookie, form.get("csrf")):
            return render("message.html", 403, principal, heading="Not expired", text=STALE_FORM)
        now = config.life.clock()
        async with config.sessions() as session, session.begin():
            row = await session.get(NotifierSilence, silence_id, with_for_update=True)
            if row is None:
                return render(
                    "message.html",
                    404,
                    principal,
                    heading="No such silence",
                    text=f"No silence has the id {silence_id}.",
                )
            if row.ends_at > now:
                # as DELETE /v1/silences/{id}: one not started yet never becomes active
                row.ends_at = max(now, row.starts_at)
        log.info("silence expired", extra={"silence_id": silence_id, "actor": principal.name})
        return RedirectResponse(f"{COOKIE_PATH}/silences", 303)

    @router.get("/agreements")
    async def agreements_page(principal: ReportReader) -> Response:
        now = config.life.clock()
        cards: list[tuple[Report | None, str, str | None, dict[str, int]]] = []
        async with config.sessions() as session:
            views = await open_views(session)
            open_by: dict[str, dict[str, int]] = {}
            for v in views:
                counts = open_by.setdefault(v.agreement, {})
                counts[v.objective] = counts.get(v.objective, 0) + 1
            for name in sorted((await agreements_now(session)).keys()):
                try:
                    report: Report | None = await report_for(session, name, period=None, now=now)
                    problem = None
                except (ReportError, DefinitionsInvalid, ValueError) as exc:
                    report, problem = None, str(exc)
                cards.append((report, name, problem, open_by.get(name, {})))
        return render(
            "agreements.html",
            200,
            principal,
            cards=cards,
            percent=_percent,
            left=_budget_left,
            target=_target,
        )

    @router.get("/agreements/{name}/report")
    async def agreement_report(name: str, request: Request, principal: ReportReader) -> Response:
        period = request.query_params.get("period") or None
        async with config.sessions() as session:
            try:
                report = await report_for(session, name, period=period, now=config.life.clock())
            except UnknownAgreement:
                return render(
                    "message.html", 404, principal, heading="No such agreement", text=name
                )
            except BadPeriod as exc:
                return render("message.html", 400, principal, heading="Bad period", text=str(exc))
        page = render_report.to_html(report)
        # The report page keeps its own inline style: admitted by its hash, nothing else.
        styles = re.findall(r"<style>(.*?)</style>", page, re.S)
        headers = _page_headers("")
        headers["Content-Security-Policy"] = report_policy(styles)
        return HTMLResponse(page, headers=headers)

    return router


#: The chart reaches back at most this far before the opening (a 30d window would
#: otherwise draw a month in 6 h buckets).
CHART_LOOKBACK_MS = 7 * 86_400_000


async def _chart(
    config: ConsoleConfig, view: BreachView
) -> tuple[Chart | None, tuple[str, str] | None]:
    """The SLI chart of a ratio breach's series, from the opening's longest window (at
    most :data:`CHART_LOOKBACK_MS`) before it to its resolution (or now)."""
    event = view.event
    if event is None or not event.windows or measure_of(event).kind != "ratio":
        return None, None
    try:
        longest = max(parse_duration_ms(w.window) for w in event.windows)
    except ValueError:
        return None, None
    start = view.opened_at - min(longest, CHART_LOOKBACK_MS)
    start -= start % MINUTE_MS
    end = (view.resolved_at or config.life.clock()) + MINUTE_MS
    async with config.sessions() as session:
        rows = (
            await session.execute(
                select(SliRollup.fingerprint, SliRollup.minute, SliRollup.good, SliRollup.valid)
                .where(
                    SliRollup.objective_id == event.objective_id,
                    SliRollup.group == dict(event.group),
                    SliRollup.minute >= start,
                    SliRollup.minute < end,
                )
                .order_by(SliRollup.minute)
            )
        ).all()
    minutes = [Minute(f, m, int(g), int(v)) for f, m, g, v in rows]
    return sli_chart(minutes, start, end, event.windows[0].target), (utc_text(start), utc_text(end))


def _hhmm(ms: int) -> str:
    """A chart's time label: ``11-14 22:13`` (UTC)."""
    return utc_text(ms)[5:16]


def report_policy(styles: list[str]) -> str:
    """The report page's policy: its inline style blocks by their SHA-256, no script."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in styles
    ]
    return (
        f"default-src 'none'; style-src {' '.join(hashes) or NONE}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _target(objective: ObjectiveReport) -> str:
    """A ratio target as the messages write it (``99.9 %``); others as the report does."""
    if objective.kind == "ratio" and objective.target is not None:
        return ratio_texts(None, objective.target)[1]
    return objective.target_text


def _percent(value: float | None) -> str:
    return "n/a" if value is None else percent(value, 2)


def _budget_left(used: float | None) -> str:
    """Error budget left from the report's fraction used (negative: overspent)."""
    return budget_text(None if used is None else 1.0 - used) or "n/a"


@dataclass(frozen=True)
class SilenceLine:
    """A silence or maintenance window as the silences page lists it; ``id``: an API
    silence (expirable here), None: a definition (changed by applying YAML)."""

    id: str | None
    source: str
    match: dict[str, str]
    starts_at: int
    ends_at: int
    comment: str | None
    active: bool
    muted: list[BreachView]


def _page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def _ack_view(row: BreachAck | None) -> AckView | None:
    if row is None:
        return None
    return AckView(row.acked_by, row.comment, row.at, row.via, row.actor)


async def _delivery_lines(session: AsyncSession, breach_id: str) -> list[DeliveryLine]:
    deliveries = list(
        (
            await session.execute(
                select(Delivery).where(Delivery.breach_id == breach_id).order_by(Delivery.id)
            )
        ).scalars()
    )
    attempts = (
        await session.execute(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
        )
    ).scalars()
    by_delivery: dict[int, list[AttemptLine]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(
            AttemptLine(
                a.attempt, a.outcome, a.status_code, a.latency_ms, a.error, dt_to_ms(a.attempted_at)
            )
        )
    return [
        DeliveryLine(
            receiver=d.receiver,
            kind=d.kind,
            status=d.status,
            last_error=d.last_error,
            queued_at=dt_to_ms(d.created_at),
            due_at=dt_to_ms(d.next_attempt_at),
            attempts=by_delivery.get(d.id, []),
        )
        for d in deliveries
    ]


async def change_mark(session: AsyncSession) -> tuple[Any, ...]:
    """What moves whenever the Now table would: open breaches (count, latest update)
    and acknowledgements (count, latest)."""
    breaches = (
        await session.execute(
            select(func.count(), func.max(BreachRecord.updated_at)).where(
                BreachRecord.status == "open"
            )
        )
    ).one()
    acked = (await session.execute(select(func.count(), func.max(BreachAck.at)))).one()
    resolved = (
        await session.execute(
            select(func.max(BreachRecord.updated_at)).where(BreachRecord.status != "open")
        )
    ).scalar()
    return (*breaches, *acked, resolved)


async def _event_stream(request: Request, config: ConsoleConfig) -> AsyncIterator[str]:
    """``ready`` once the first mark is taken, then ``changed`` each time
    :func:`change_mark` moves (polled every ``poll_ms``); ``signedout`` and the end
    when the session's key stops being accepted."""
    yield f"retry: {config.poll_ms}\n\n"
    mark: tuple[Any, ...] | None = None
    quiet_ms = 0
    while not await request.is_disconnected():
        if session_principal(request) is None:
            yield "event: signedout\ndata: \n\n"
            return
        current: tuple[Any, ...] | None
        try:
            async with config.sessions() as session:
                current = await change_mark(session)
        except (SQLAlchemyError, OSError):
            current = mark  # the database is away: nothing to tell; the next poll tries again
        if mark is None and current is not None:
            yield "event: ready\ndata: \n\n"  # watching from here on
        elif mark is not None and current != mark:
            yield "event: changed\ndata: \n\n"
            quiet_ms = 0
        elif quiet_ms >= KEEPALIVE_MS:
            yield ": keepalive\n\n"
            quiet_ms = 0
        mark = current
        await asyncio.sleep(config.poll_ms / 1000)
        quiet_ms += config.poll_ms


def mount_console(app: FastAPI, config: ConsoleConfig) -> None:
    """Serve the console on ``app`` (a notifier app from ``create_app``)."""
    app.state.console = config
    app.include_router(console_router(config))
    add_home_link(app, "console", "/console")

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        query = urllib.parse.urlencode({"next": exc.next_path})
        return RedirectResponse(f"{LOGIN_PATH}?{query}", 303, headers={"Cache-Control": "no-store"})

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleForbidden)
        env = _environment()
        nonce = secrets.token_urlsafe(16)
        page = env.get_template("message.html").render(
            nonce=nonce,
            principal=exc.principal,
            csrf=config.codec.csrf_token(exc.principal.cookie),
            heading="Not allowed",
            text=f"The key {exc.principal.name} lacks the scope {exc.scope.value}.",
        )
        return HTMLResponse(page, 403, headers=_page_headers(nonce))

    app.add_exception_handler(SignInNeeded, sign_in)
    app.add_exception_handler(ConsoleForbidden, forbidden)
