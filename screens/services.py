"""Step 6, services: DNS, NTP and the plant's proxy.

MachineMetrics, Network Requirements: "The Edge device uses Google DNS by default" (8.8.8.8, 8.8.4.4) and falls back to
configured servers; time comes from the pool.ntp.org fleet, internal NTP servers via DHCP;
"The Edge supports HTTP/HTTPS proxy with optional authentication".
"""

from __future__ import annotations

import dataclasses
import re

from textual import on
from textual.app import ComposeResult
from textual.containers import HorizontalGroup, VerticalGroup
from textual.widgets import Checkbox

from installer.planning.fields import check_host_or_ip, check_proxy_url
from installer.planning.plan import Dns, Ntp, Plan, Proxy
from installer.planning.validate import Context, validate
from screens.base import Choice, FieldInput, StepScreen, Toggle

DNS_OPTIONS = [("google", "Google 8.8.8.8, 8.8.4.4 (default)"), ("dhcp", "From DHCP"),
               ("custom", "Custom servers")]
NTP_OPTIONS = [("pool", "pool.ntp.org (default)"), ("dhcp", "From DHCP"), ("custom", "Internal servers")]


def split_list(text: str) -> tuple[str, ...]:
    """The entries of a one-line list, separated by commas and/or spaces."""
    return tuple(t for t in re.split(r"[\s,;]+", text) if t)


def core_problem(plan: Plan, path: str, ctx: Context | None) -> str | None:
    """installer.planning.validate's messages for the field at `path` (and its items) in `plan`, for a field's
    check where installer.planning.fields has no single-value rule (the rule needs the whole plan)."""
    found = [e for e in validate(plan, ctx) if e.field == path or e.field.startswith(path + "[")]
    return "; ".join(e.message for e in found) or None


class ServicesScreen(StepScreen):
    STEP = "services"
    TITLE = "DNS, time and proxy"
    SECTIONS = ("dns", "ntp", "proxy")
    AUTO_FOCUS = "#body RadioSet"

    def compose_body(self) -> ComposeResult:
        plan = self.plan
        proxy = plan.proxy or Proxy()
        with HorizontalGroup():
            with VerticalGroup():
                yield Choice("DNS (Google falls back to DHCP)", DNS_OPTIONS, field="dns.mode",
                             value=plan.dns.mode, id="dns")
                yield FieldInput("DNS servers (IP addresses)", field="dns.servers", value=" ".join(plan.dns.servers),
                                 placeholder="e.g. 10.20.0.53, 10.20.0.54", check=self._check_dns, id="dns-servers")
            with VerticalGroup():
                yield Choice("Time (NTP)", NTP_OPTIONS, field="ntp.mode", value=plan.ntp.mode, id="ntp")
                yield FieldInput("NTP servers (names or IPs)", field="ntp.servers", value=" ".join(plan.ntp.servers),
                                 placeholder="e.g. ntp.plant.local", check=_check_ntp, id="ntp-servers")
        yield Toggle("The plant requires an HTTP/HTTPS proxy", field="proxy", value=plan.proxy is not None,
                     id="use-proxy")
        with VerticalGroup(id="proxy"):
            yield FieldInput("Proxy URL", field="proxy.url", value=proxy.url,
                             placeholder="e.g. http://proxy.plant.local:3128", check=_check_proxy_url, id="proxy-url")
            with HorizontalGroup():
                yield FieldInput("User name (optional)", field="proxy.username", value=proxy.username,
                                 placeholder="(none)", id="proxy-username")
                yield FieldInput("Password (optional)", field="proxy.password", value=proxy.password,
                                 placeholder="(none)", password=True, id="proxy-password")
            yield FieldInput("No proxy for (hosts, .domains, networks)", field="proxy.no_proxy",
                             value=" ".join(proxy.no_proxy), placeholder="e.g. .plant.local 10.0.0.0/8",
                             check=self._check_no_proxy, id="no-proxy")

    def on_mount(self) -> None:
        self._show_applicable()

    @on(Choice.Chosen)
    @on(Checkbox.Changed, "#use-proxy")
    def _show_applicable(self) -> None:
        self.query_one("#dns-servers").display = self.query_one("#dns", Choice).value == "custom"
        self.query_one("#ntp-servers").display = self.query_one("#ntp", Choice).value == "custom"
        self.query_one("#proxy").display = self.query_one("#use-proxy", Toggle).value

    def _check_dns(self, value: str) -> str | None:
        plan = dataclasses.replace(self.plan, dns=Dns(mode="custom", servers=split_list(value)))
        return core_problem(plan, "dns.servers", self.context.validation)

    def _check_no_proxy(self, value: str) -> str | None:
        plan = dataclasses.replace(self.plan, proxy=Proxy(no_proxy=split_list(value)))
        return core_problem(plan, "proxy.no_proxy", self.context.validation)

    def read(self) -> Plan:
        dns_mode = self.query_one("#dns", Choice).value
        ntp_mode = self.query_one("#ntp", Choice).value
        dns = Dns(mode=dns_mode, servers=split_list(self.query_one("#dns-servers", FieldInput).value)
                  if dns_mode == "custom" else ())
        ntp = Ntp(mode=ntp_mode, servers=split_list(self.query_one("#ntp-servers", FieldInput).value)
                  if ntp_mode == "custom" else ())
        proxy = None
        if self.query_one("#use-proxy", Toggle).value:
            password = self.query_one("#proxy-password", FieldInput).input.value  # a secret is taken as typed
            proxy = Proxy(url=self.query_one("#proxy-url", FieldInput).value or None,
                          username=self.query_one("#proxy-username", FieldInput).value or None,
                          password=password or None,
                          no_proxy=split_list(self.query_one("#no-proxy", FieldInput).value))
        return dataclasses.replace(self.plan, dns=dns, ntp=ntp, proxy=proxy)


def _check_ntp(value: str) -> str | None:
    problems = [check_host_or_ip(s, what="time server") for s in split_list(value)]
    return "; ".join(p for p in problems if p) or None


def _check_proxy_url(value: str) -> str | None:
    return check_proxy_url(value.strip())
