"""The built-in ``fleetplane-template`` function: a Jinja template rendered into composed resources.

Its input is ``{template: {inline, source}}`` as a revision freezes it (a ``path`` is read into
``inline`` when the revision is cut). What it renders comes after what earlier steps composed.
"""

from __future__ import annotations

from provisioner import functions, render


def run(request: functions.Request) -> functions.Response:
    template = request.input.get("template")
    text = template.get("inline") if isinstance(template, dict) else None
    if not isinstance(text, str) or not text:
        raise functions.FunctionError(
            "input.template.inline is missing — give the step a template: {path: FILE} or {inline: TEXT}"
        )
    source = str(template.get("source") or f"step {request.step}") if isinstance(template, dict) else ""
    rendered = render.render(text, source=source, values=request.values)
    return functions.Response(desired=[*request.desired, *rendered])
