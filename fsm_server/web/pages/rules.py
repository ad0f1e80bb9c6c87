"""The notification rules pages: the portal's rules in scope (``fsm_server.rulebook``), edited by
administrators and dealer users, with "Send a test"; every user may subscribe to the rules it
sees; the config file's ``[[rules]]`` are shown read-only to administrators (they may watch any
customer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.from_thread
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...accounts import ROLES
from ...config import NotifySection, RuleSection
from ...errors import NotFound, NotifyError
from ...portal.reports import customer_choices
from ...rulebook import (
    DEALER_KINDS,
    KINDS,
    RuleForm,
    delete_rule,
    get_rule,
    list_rules,
    save_rule,
    stored_rules,
    subscribe,
    unsubscribe,
)
from ...rulebook.testmail import send_test
from ...scoping import Scoped
from .. import NavItem, Role, audit_event, field, form_data, principal_of, render, require

NAV = [NavItem("Rules", "/rules", roles=ROLES)]
EDITORS: tuple[Role, ...] = ("admin", "dealer")


def _config_rules(request: Request) -> list[RuleSection]:
    ctx = getattr(request.app.state, "ctx", None)
    return list(ctx.config.rules) if ctx is not None else []


def _notify(request: Request) -> NotifySection:
    ctx = getattr(request.app.state, "ctx", None)
    return ctx.config.notify if ctx is not None else NotifySection()


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


def _number(text: str, what: str, cast: type[float] | type[int]) -> Any:
    if not text.strip():
        return None
    try:
        return cast(text.strip())
    except ValueError:
        raise NotifyError(f"{what} {text[:40]!r} is not a number", hint=f"give {what} as a number") from None


def rule_form(form: FormData) -> RuleForm:
    """The submitted rule form (bounds are checked by ``rulebook.save_rule``)."""
    return RuleForm(
        label=field(form, "label", 200),
        when=field(form, "when", 40),
        codes=_words(field(form, "codes", 2000)),
        severities=_words(field(form, "severities", 200)),
        below=_number(field(form, "below", 40), "'below'", float),
        supply_kinds=_words(field(form, "supply_kinds", 500)),
        customers=[c[:200] for c in form.getlist("customer") if isinstance(c, str)][:500],
        recipients=field(form, "recipients", 4000),
        delay_seconds=_number(field(form, "delay_seconds", 20), "the delay", int) or 0,
        cleared=field(form, "cleared") == "1",
        lookback_hours=_number(field(form, "lookback_hours", 20), "the look-back", float) or 24.0,
        enabled=field(form, "enabled") == "1",
    )


def _page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    who = principal_of(request)
    scoped = Scoped.of(who)
    context: dict[str, Any] = {
        "rules": list_rules(scoped, who, user_id=who.user_id),
        "config_rules": _config_rules(request) if who.role == "admin" else [],
        "kinds": KINDS if who.role == "admin" else DEALER_KINDS,
        "customers": customer_choices(scoped),
        "editor": who.role in EDITORS,
        "title": "Notification rules",
        "rule": None,
        "values": None,
    }
    context.update(extra)
    return render(request, "p_rules.html", status_code=status_code, **context)


def _rule_id(request: Request) -> int:
    return int(request.path_params["rule_id"])


@require(*ROLES)
def rules_page(request: Request) -> Response:
    return _page(request)


@require(*ROLES)
def rule_page(request: Request) -> Response:
    who = principal_of(request)
    try:
        rule = get_rule(Scoped.of(who), who, _rule_id(request), user_id=who.user_id)
    except NotFound:
        raise HTTPException(404) from None
    return _page(request, rule=rule, title=f"Rule {rule.label}")


@require(*EDITORS)
def rule_save(request: Request) -> Response:
    """Create (POST /rules) or change (POST /rules/ID) a rule."""
    who = principal_of(request)
    scoped = Scoped.of(who)
    rule_id = _rule_id(request) if "rule_id" in request.path_params else None
    form = form_data(request)
    try:
        saved = save_rule(scoped, who, rule_form(form), by=who.name, now=datetime.now(UTC), rule_id=rule_id)
    except NotFound:
        raise HTTPException(404) from None
    except NotifyError as exc:
        rule = None
        if rule_id is not None:
            try:
                rule = get_rule(scoped, who, rule_id, user_id=who.user_id)
            except NotFound:
                raise HTTPException(404) from None
        return _page(request, status_code=400, error=exc.message, hint=exc.hint, rule=rule, values=form)
    audit_event(
        request,
        "rule.save" if rule_id is not None else "rule.add",
        target=f"{saved.name} {saved.label}",
        detail={"when": saved.when, "customers": saved.customers, "recipients": saved.recipients},
        dealer=saved.dealer,
    )
    return RedirectResponse(f"/rules/{saved.id}", status_code=303)


@require(*EDITORS)
def rule_delete(request: Request) -> Response:
    who = principal_of(request)
    try:
        gone = delete_rule(Scoped.of(who), who, _rule_id(request))
    except NotFound:
        raise HTTPException(404) from None
    audit_event(request, "rule.delete", target=f"{gone.name} {gone.label}", dealer=gone.dealer)
    return RedirectResponse("/rules", status_code=303)


@require(*EDITORS)
def rule_test(request: Request) -> Response:
    """Mail a test of the rule, through [notify], to everyone who gets its mails."""
    who = principal_of(request)
    try:
        rule = get_rule(Scoped.of(who), who, _rule_id(request), user_id=who.user_id)
    except NotFound:
        raise HTTPException(404) from None
    if not rule.editable:
        raise HTTPException(404)
    sections = [s for s in stored_rules() if s.name == rule.name or s.name.startswith(f"{rule.name}-user-")]
    to = list(dict.fromkeys(a for s in sections for a in s.to))
    section = RuleSection(name=rule.name, when=rule.when, to=to, cleared=rule.cleared)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    try:
        answer = anyio.from_thread.run(
            lambda: send_test(
                _notify(request), section, customer=", ".join(rule.customers), by=who.name, now=now
            )
        )
    except NotifyError as exc:
        return _page(request, status_code=502, rule=rule, error=exc.message, hint=exc.hint)
    audit_event(
        request, "rule.test", target=f"{rule.name} {rule.label}", detail={"to": to}, dealer=rule.dealer
    )
    return _page(request, rule=rule, notice=f"Test mail sent to {', '.join(to)}: {answer[:200]}")


@require(*ROLES)
def rule_subscribe(request: Request) -> Response:
    who = principal_of(request)
    form = form_data(request)
    try:
        if field(form, "action") == "unsubscribe":
            rule = unsubscribe(Scoped.of(who), who, _rule_id(request), user_id=who.user_id)
            what = "rule.unsubscribe"
        else:
            rule = subscribe(
                Scoped.of(who),
                who,
                _rule_id(request),
                user_id=who.user_id,
                address=field(form, "address", 320),
                now=datetime.now(UTC),
            )
            what = "rule.subscribe"
    except NotFound:
        raise HTTPException(404) from None
    except NotifyError as exc:
        rule = get_rule(Scoped.of(who), who, _rule_id(request), user_id=who.user_id)
        return _page(request, status_code=400, rule=rule, error=exc.message, hint=exc.hint)
    audit_event(request, what, target=f"{rule.name} {rule.label}", detail={"address": rule.my_address or ""})
    return RedirectResponse(f"/rules/{rule.id}", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/rules", rules_page),
        Route("/rules", rule_save, methods=["POST"]),
        Route("/rules/{rule_id:int}", rule_page),
        Route("/rules/{rule_id:int}", rule_save, methods=["POST"]),
        Route("/rules/{rule_id:int}/delete", rule_delete, methods=["POST"]),
        Route("/rules/{rule_id:int}/test", rule_test, methods=["POST"]),
        Route("/rules/{rule_id:int}/subscription", rule_subscribe, methods=["POST"]),
    ]


__all__ = ["NAV", "routes"]
