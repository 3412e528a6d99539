"""Synthesizing the real app (the one ``app.py`` builds) for tests, and reading the result.

cdk-nag runs inside each synth; when it finds an unacknowledged error the synth raises, but the
templates and ``validation-report.json`` are already written, so ``synthesize`` keeps the error
and the template tests still run while the nag test reports the findings.
"""

from __future__ import annotations

from stacks.jsii_env import quiet_jsii

quiet_jsii()  # before aws_cdk starts jsii's node process

import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from stacks.app import build  # noqa: E402
from stacks.config import cdk_json_context  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# The default synth is cdk.json's: a dev stage (ephemeral, environment-agnostic). The variant is a
# production stage in an explicit account and region, on another issuer, with the stricter
# entitlement default, named CORS origins, external processors for both lanes (a Lambda function
# by qualified ARN and an HTTP endpoint), a reserved sweeper, another finalize cap, an archive
# kept indefinitely, an alarm e-mail and a tuned alarm threshold. The default synth has none of these.
VARIANT_CONTEXT = {
    "stage": "prod",
    "account": "123456789012",
    "region": "eu-west-1",
    "jwtIssuer": "https://issuer.example.test",
    "jwtAudience": ["tracklane-web"],
    "defaultUploadEntitlement": "deny",
    "corsOrigins": ["https://app.example.test"],
    "stemsProcessor": "arn:aws:lambda:eu-west-1:210987654321:function:stem-splitter:live",
    "lyricsProcessor": "https://lyrics.example.test/v1/transcribe",
    "sweeperReservedConcurrency": 1,
    "finalizeMaxConcurrency": 20,
    "progressThrottleRate": 500,
    "readThrottleRate": 300,
    "readThrottleBurst": 600,
    "eventArchiveDays": 0,
    "alarmEmail": "oncall@example.test",
    "alarmWorkflowFailed": 10,
    # The first deploy of an upgrade across replaced indexes (docs/migrations.md).
    "indexMigration": True,
}


@dataclass(frozen=True)
class Synth:
    outdir: Path
    stack_name: str
    template: dict[str, Any]
    report: dict[str, Any]
    error: str | None  # the synth exception (a failed validation), if any

    @property
    def assertions(self) -> Template:
        return Template.from_json(self.template)

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.template["Resources"].items() if r["Type"] == type_}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.template["Resources"][logical_id].get("Properties", {}))

    def asset_dir(self, s3_key: str) -> Path:
        """The staged directory of a zip asset (``S3Key`` is ``<asset hash>.zip``)."""
        return self.outdir / f"asset.{s3_key.removesuffix('.zip')}"


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None) -> Synth:
    context = {**cdk_json_context(), "aws:cdk:enable-path-metadata": True, **(overrides or {})}
    app = App(outdir=str(outdir), context=context)
    stack = build(app)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces the failed validation as RuntimeError
        error = str(exc)
    return _read(outdir, stack.stack_name, error)


def read_synth(outdir: Path) -> Synth:
    """A synth another pytest worker made into ``outdir`` (it wrote ``synth.json`` last)."""
    made = json.loads((outdir / "synth.json").read_text())
    return _read(outdir, made["stack_name"], made["error"])


def _read(outdir: Path, stack_name: str, error: str | None) -> Synth:
    template_file = outdir / f"{stack_name}.template.json"
    if not template_file.exists():
        raise AssertionError(f"synth produced no template: {error}")
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"pluginReports": []}
    return Synth(outdir, stack_name, json.loads(template_file.read_text()), report, error)


def logical_id_by_path(synth: Synth, path_suffix: str) -> str:
    """Logical id of the resource whose construct path ends with ``path_suffix``."""
    matches: list[str] = [
        lid
        for lid, resource in synth.template["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)
    ]
    assert len(matches) == 1, f"{path_suffix}: {matches}"
    return matches[0]


def fake_value(intrinsic: dict[str, Any]) -> str:
    """A stand-in for a deploy-time value: an ARN-shaped string naming the referenced resource."""
    if "Ref" in intrinsic:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{intrinsic['Ref']}"
    if "Fn::GetAtt" in intrinsic:
        logical_id, _attribute = intrinsic["Fn::GetAtt"]
        return f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}"
    raise ValueError(f"cannot stand in for {intrinsic}")


def resolve(value: Any) -> Any:
    """Flatten Fn::Join / Fn::Sub around a template string, with fake values for references."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part)) for part in parts)
    if isinstance(value, dict) and "Fn::Sub" in value:
        body, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        for name, replacement in variables.items():
            body = body.replace("${" + name + "}", str(resolve(replacement)))
        return body
    if isinstance(value, dict):
        return fake_value(value)
    raise ValueError(f"cannot resolve {value!r}")


def state_machine_definition(synth: Synth) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the deployed ASL with substitutions applied, the substitutions as written in the template)."""
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    text = resolve(props["DefinitionString"])
    substitutions = props.get("DefinitionSubstitutions", {})
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", resolve(value) if isinstance(value, dict) else str(value))
    return json.loads(text), substitutions
