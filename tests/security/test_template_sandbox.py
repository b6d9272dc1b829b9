"""Finding 1: template injection. Known server-side template-injection payloads in campaign
content and in override templates are refused at `campaigns create`, at `campaigns preview` and
on the web view-online page, with a one-line error naming the file and line; none of them runs
(each tries to create a marker file, which must never appear)."""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery_support import make_audience
from web_support import BASE

from mailer.app import build_app
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.kernel.links import Links
from mailer.settings import load_settings

SHELL = "touch {marker}"

#: Payloads known from template-injection write-ups, each of which ends in a shell command,
#: reads a file, or reaches Python internals on an unsandboxed Jinja2.
PAYLOADS = {
    "cycler globals": "{{{{ cycler.__init__.__globals__.os.popen('{cmd}').read() }}}}",
    "joiner globals": "{{{{ joiner.__init__.__globals__.os.popen('{cmd}').read() }}}}",
    "lipsum globals": "{{{{ lipsum.__globals__['os'].popen('{cmd}').read() }}}}",
    "namespace globals": "{{{{ namespace.__init__.__globals__.os.popen('{cmd}').read() }}}}",
    "range globals": "{{{{ range.__init__.__globals__ }}}}",
    "subclasses": (
        "{{% for c in ''.__class__.__mro__[1].__subclasses__() %}}"
        "{{% if c.__name__ == 'Popen' %}}{{{{ c('{cmd}', shell=True) }}}}{{% endif %}}"
        "{{% endfor %}}"
    ),
    "attr filter": (
        "{{{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}}}"
    ),
    "attr filter on dict": "{{{{ dict|attr('\\x5f\\x5finit\\x5f\\x5f') }}}}",
    "str.format": "{{{{ '{{0.__class__.__mro__[1].__subclasses__}}'.format(1) }}}}",
    "str.format_map": "{{{{ '{{a.__init__.__globals__}}'.format_map({{'a': namespace}}) }}}}",
    "format filter": "{{{{ '%s'|format(namespace.__init__.__globals__) }}}}",
    "percent format": "{{{{ '%s' % namespace.__init__.__globals__ }}}}",
    "self reference": "{{{{ self.__init__.__globals__ }}}}",
    "self context": "{{{{ self._TemplateReference__context }}}}",
    "subscriber object": "{{{{ subscriber.__class__.__init__.__globals__ }}}}",
    "open()": "{{{{ open('/etc/passwd').read() }}}}",
    "config global": "{{{{ config.items() }}}}",
    "request global": "{{{{ request.application.__globals__ }}}}",
    "mutating a list": "{{% set x = [] %}}{{{{ x.append(1) }}}}",
}


def content_with(payload: str, marker: Path) -> str:
    body = payload.format(cmd=SHELL.format(marker=marker))
    return f"---\nsubject: Nieuws\n---\n# Nieuws\n\n{body}\n"


@pytest.fixture
def audience(env) -> list[str]:
    app = build_app(load_settings())
    try:
        return make_audience(app.sessions, 2)
    finally:
        app.close()


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_campaigns_create_refuses_the_payload(run_cli, audience, tmp_path: Path, name: str):
    marker = tmp_path / "pwned"
    content = tmp_path / "nieuws.md"
    content.write_text(content_with(PAYLOADS[name], marker), encoding="utf-8")
    result = run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief",
                     ok=False)
    assert result.exit_code != 0
    line = one_line_error(result.output)
    assert "nieuws.md" in line and "line" in line, line
    assert not marker.exists()
    listed = run_cli("campaigns", "ls", "--json")
    assert listed.stdout.strip() in ("[]", "")  # nothing was stored


def plant_campaign(app, content: str) -> int:
    """A campaign row holding the payload, as if stored by an older version or by hand."""
    with session_scope(app.sessions) as session:
        campaign = Campaign(subject="Nieuws", content=content, audience={"lists": ["nieuwsbrief"]})
        session.add(campaign)
        session.flush()
        return campaign.id


@pytest.mark.parametrize("name", ["cycler globals", "subclasses", "str.format", "self reference",
                                  "attr filter", "open()"])
def test_preview_refuses_a_planted_payload(run_cli, app, audience, tmp_path: Path, name: str):
    marker = tmp_path / "pwned"
    body = PAYLOADS[name].format(cmd=SHELL.format(marker=marker))
    campaign_id = plant_campaign(app, f"# Nieuws\n\n{body}\n")
    result = run_cli("campaigns", "preview", str(campaign_id), "--subscriber", audience[0],
                     ok=False)
    assert result.exit_code != 0
    line = one_line_error(result.output)
    assert "line" in line, line
    assert not marker.exists()


@pytest.mark.parametrize("name", ["cycler globals", "subclasses", "str.format_map",
                                  "self context", "lipsum globals"])
def test_view_online_page_refuses_a_planted_payload(client, app, audience, tmp_path: Path,
                                                    name: str):
    from subscribers import queries
    from subscribers.service import email_key

    marker = tmp_path / "pwned"
    body = PAYLOADS[name].format(cmd=SHELL.format(marker=marker))
    campaign_id = plant_campaign(app, f"# Nieuws\n\n{body}\n")
    with session_scope(app.sessions) as session:
        person = queries.subscriber_by_key(session, email_key(audience[0]))
        assert person is not None
        public_id = person.public_id
    url = Links(app.settings.web.base_url, app.signer).view(public_id, campaign_id)
    page = client.get(url.removeprefix(BASE))
    assert page.status_code == 500
    assert "__globals__" not in page.text and "Traceback" not in page.text
    assert not marker.exists()


def test_an_override_template_with_a_payload_is_refused(run_cli, audience, tmp_path: Path,
                                                        config_file: Path):
    from delivery_support import set_config

    marker = tmp_path / "pwned"
    override = tmp_path / "templates"
    (override / "mail").mkdir(parents=True)
    (override / "mail" / "newsletter.nl.html").write_text(
        "<html><body>\n{{ content }}\n"
        + PAYLOADS["cycler globals"].format(cmd=SHELL.format(marker=marker))
        + "\n</body></html>\n",
        encoding="utf-8",
    )
    set_config(config_file, templates__override_dir=str(override))
    content = tmp_path / "nieuws.md"
    content.write_text("---\nsubject: Nieuws\n---\n# Nieuws\n", encoding="utf-8")
    result = run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief",
                     ok=False)
    line = one_line_error(result.output)
    assert "newsletter.nl.html, line 3" in line, line
    assert not marker.exists()


def test_ordinary_templates_still_render(run_cli, audience, tmp_path: Path):
    content = tmp_path / "nieuws.md"
    content.write_text(
        "---\nsubject: Nieuws voor {{ subscriber.name }}\n---\n# Beste {{ subscriber.name }}\n\n"
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}Som {{ ns.n }}, {{ dict(a=1)['a'] }}, {{ '%d' % 5 }}, "
        "{{ '{}'.format('x') }}\n",
        encoding="utf-8",
    )
    run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief")
    shown = run_cli("campaigns", "preview", "1", "--subscriber", audience[0])
    assert "Som 3, 1, 5, x" in shown.output
