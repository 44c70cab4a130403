"""The console's Starlette application: the fleet overview, the tenants list, each tenant's
page and (only when writable) the suspend, resume and drop actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.registry import State
from ..errors import ConfigurationError, TenantryError, UnknownTenant
from ..tenancy import Tenancy
from . import fleet, sections
from .security import TokenGate, csrf_token, same, same_origin
from .sizes import human, sizes

#: The largest form the console accepts (its forms hold a token, a name and a reason).
MAX_FORM = 8192
#: The highest page number asked for (beyond the last page a page is empty anyway).
MAX_PAGE = 10**9
#: The longest suspension reason kept.
MAX_REASON = 500
#: What ``?notice=`` may say after an action (never text from the request).
NOTICES = {"suspended": "Tenant suspended.", "resumed": "Tenant resumed.",
           "dropped": "Tenant dropped."}
#: The actions of a writable console.
ACTIONS = ("suspend", "resume", "drop")


class Console:
    """The pages and actions of one console (``writable``: the actions are offered)."""

    def __init__(self, tenancy: Tenancy, token: str, writable: bool) -> None:
        self.tenancy = tenancy
        self.writable = writable
        self.csrf = csrf_token(token)
        self.templates = Environment(
            loader=PackageLoader("tenantry.console", "templates"), autoescape=True
        )
        self.templates.filters["size"] = human
        self.templates.filters["path"] = lambda name: quote(str(name), safe="")

    def render(self, request: Request, template: str, status: int = 200,
               **values: Any) -> HTMLResponse:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        page = self.templates.get_template(template).render(
            writable=self.writable, csrf=self.csrf, notice=notice, states=[s.value for s in State],
            path=request.url.path, **values)
        return HTMLResponse(page, status_code=status)

    # -- pages ---------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        return self.render(request, "overview.html", view=fleet.overview(self.tenancy))

    def tenants(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state") or None
        if state is not None and state not in {s.value for s in State}:
            state = None
        search = (params.get("q") or "").strip()[:200] or None
        number = int(params["page"]) if params.get("page", "").isdigit() else 1
        number = min(number, MAX_PAGE)
        found = fleet.page(self.tenancy, number=number, state=state, search=search)
        return self.render(request, "tenants.html", page=found, state=state, search=search,
                           sizes=sizes(self.tenancy, found.rows), head=fleet.head_of(self.tenancy))

    def tenant(self, request: Request) -> Response:
        return self.tenant_page(request, request.path_params["name"])

    def tenant_page(self, request: Request, name: str, problem: str | None = None,
                    status: int = 200) -> Response:
        try:
            info = self.tenancy.get_tenant(name)
        except TenantryError:  # unknown, or not even a valid name
            return self.render(request, "error.html", 404, title="No such tenant",
                               message=f"There is no tenant named {name!r}.")
        return self.render(request, "tenant.html", status, info=info, problem=problem,
                           sections=sections.shown(self.tenancy, info))

    # -- actions -------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ACTIONS:
            return self.render(request, "error.html", 404, title="No such action",
                               message="The console's actions are suspend, resume and drop.")
        if not self.writable:
            return self.render(request, "error.html", 403, title="Read-only console",
                               message="Actions need a console started with --writable.")
        form = await read_form(request)
        if form is None or not same(form.get("csrf"), self.csrf) or not same_origin(request):
            return self.render(request, "error.html", 403, title="Refused",
                               message="The form's CSRF token is missing or wrong: reload "
                                       "the page and try again.")
        try:
            return await run_in_threadpool(self.run, request, action, name, form)
        except UnknownTenant:
            return self.render(request, "error.html", 404, title="No such tenant",
                               message=f"There is no tenant named {name!r}.")
        except TenantryError as exc:
            return await run_in_threadpool(self.tenant_page, request, name, str(exc), 409)

    def run(self, request: Request, action: str, name: str, form: Mapping[str, str]) -> Response:
        """Do ``action`` on tenant ``name`` (a worker thread: the Tenancy blocks)."""
        here = f"/tenants/{quote(name, safe='')}"
        if action == "suspend":
            reason = form.get("reason", "").strip()[:MAX_REASON] or None
            self.tenancy.suspend_tenant(name, reason=reason)
            return RedirectResponse(f"{here}?notice=suspended", status_code=303)
        if action == "resume":
            self.tenancy.resume_tenant(name)
            return RedirectResponse(f"{here}?notice=resumed", status_code=303)
        if form.get("confirm_name") != name:
            return self.tenant_page(request, name, "To drop the tenant, type its name exactly.",
                                    400)
        self.tenancy.drop_tenant(name, confirm=True)
        return RedirectResponse("/tenants?notice=dropped", status_code=303)


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form's fields (the first of each); ``None`` for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    form: dict[str, str] = {}
    for key, value in fields:
        form.setdefault(key, value)
    return form


def console_app(tenancy: Tenancy, *, token: str, writable: bool = False) -> Starlette:
    """The operator console of ``tenancy`` as an ASGI app; every request needs ``token``.

    Read-only unless ``writable``: then tenant pages offer suspend, resume and drop (POST
    forms with a CSRF token; dropping needs the tenant's name typed). See docs/console.md.
    """
    if not token:
        raise ConfigurationError("the console needs a token")
    console = Console(tenancy, token, writable)
    routes = [
        Route("/", console.overview),
        Route("/tenants", console.tenants),
        Route("/tenants/{name}", console.tenant),
        Route("/tenants/{name}/{action:str}", console.act, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenGate, token=token)])
