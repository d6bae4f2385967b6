"""The HTML page of a run: per scenario pass/fail, duration, figures and failure evidence."""

from __future__ import annotations

from collections.abc import Iterable

import jinja2

from oaas_lab.reports.model import RunRecord, scrub

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ run.title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.passed { color: #176117; font-weight: bold; }
.failed, .error { color: #a11; font-weight: bold; }
.skipped { color: #777; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; max-height: 30em; }
.tag { font-size: 0.8em; background: #eef; padding: 0 0.3em; margin-right: 0.2em; }
figure { margin: 0.5em 0 1.5em; }
figure img { max-width: 100%; border: 1px solid #ccc; }
figcaption { font-size: 0.9em; color: #555; }
</style></head><body>
<h1>{{ run.title }}</h1>
<p>Lab <b>{{ run.lab }}</b>, release <b>{{ run.release }}</b>, started {{ run.started }},
wall time {{ "%.0f"|format(run.wall_seconds) }} s.
{% for outcome, n in run.counts()|dictsort %}
<span class="{{ outcome }}">{{ n }} {{ outcome }}</span>{% endfor %}</p>
<table>
<tr><th>scenario</th><th>tags</th><th>result</th><th>duration</th><th>measured</th></tr>
{% for s in run.scenarios %}
<tr><td><a href="#s{{ loop.index }}">{{ s.name }}</a><br><small>{{ s.feature }}</small></td>
<td>{% for t in s.tags %}<span class="tag">@{{ t }}</span>{% endfor %}</td>
<td class="{{ s.outcome }}">{{ s.outcome }}</td>
<td>{{ "%.1f"|format(s.duration) }} s</td>
<td>{% for k, v in s.figures.items() %}{{ k }}: {{ v }}<br>{% endfor %}</td></tr>
{% endfor %}
</table>
{% for s in run.scenarios %}
<h2 id="s{{ loop.index }}">{{ s.name }} <span class="{{ s.outcome }}">{{ s.outcome }}</span></h2>
<p><small>{{ s.nodeid }}</small></p>
<table><tr><th>step</th><th>result</th><th>time</th></tr>
{% for step in s.steps %}
<tr><td>{{ step.keyword }} {{ step.name }}</td>
<td class="{{ 'failed' if step.failed else 'passed' }}">{{ 'failed' if step.failed else 'ok' }}</td>
<td>{{ "%.1f"|format(step.duration) }} s</td></tr>
{% endfor %}</table>
{% if s.figures %}<table><tr><th>figure</th><th>value</th></tr>
{% for k, v in s.figures.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</table>{% endif %}
{% if s.attachments %}<h3>Attachments</h3>
{% for a in s.attachments %}<figure>{% if not a.path %}<p>{{ a.note }}</p>
{% elif a.is_image %}<a href="{{ a.path }}"><img src="{{ a.path }}" alt="{{ a.caption }}"></a>
{% else %}<a href="{{ a.path }}">{{ a.path }}</a>{% endif %}
<figcaption>{{ a.caption }}</figcaption></figure>
{% endfor %}{% endif %}
{% if s.failure %}<h3>Failure{% if s.failed_step %} at "{{ s.failed_step }}"{% endif %}</h3>
<pre>{{ s.failure }}</pre>{% endif %}
{% if s.evidence %}<h3>Evidence taken when the step failed</h3>
{% for k, v in s.evidence.items() %}<details><summary>{{ k }}</summary><pre>{{ v }}</pre></details>
{% endfor %}{% endif %}
{% endfor %}
</body></html>
"""


def render(run: RunRecord, secrets: Iterable[str] = ()) -> str:
    """The report page; every known secret value is masked, whatever field it reached."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(TEMPLATE).render(run=run)
    return scrub(page, list(secrets))
