"""Least privilege: every grant names its resource; '*' only where AWS allows nothing else."""

from __future__ import annotations

import json
from typing import Any

from functions.data.keys import AUTOTAG_REFERENCES
from functions.data.schema import table_specs
from stacks.constructs.tables import READ_ACTIONS, WRITE_ACTIONS
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path

# Actions that support no resource-level permissions: AWS requires Resource "*" for them.
RESOURCE_STAR_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(synth: Synth, policy_path: str) -> list[dict[str, Any]]:
    policy = synth.properties(logical_id_by_path(synth, policy_path))
    return list(policy["PolicyDocument"]["Statement"])


def _all_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for lid, policy in synth.resources("AWS::IAM::Policy").items():
        found += [(lid, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for lid, role in synth.resources("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            found += [(lid, s) for s in inline["PolicyDocument"]["Statement"]]
    return found


def _granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] == "Allow" and action in _as_list(s["Action"])]


def _unordered_resources(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements with each resource list sorted (CDK merges statements in its own order)."""
    return [
        {**s, "Resource": sorted(s["Resource"], key=json.dumps)} if isinstance(s["Resource"], list) else s
        for s in statements
    ]


def _objects_under(synth: Synth, prefix: str) -> dict[str, Any]:
    media = logical_id_by_path(synth, "/Storage/Media/Resource")
    return {"Fn::Join": ["", [{"Fn::GetAtt": [media, "Arn"]}, f"/{prefix}*"]]}


def test_no_statement_allows_every_action(synth: Synth) -> None:
    for lid, statement in _all_statements(synth):
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (lid, statement)


def test_resource_star_only_for_actions_aws_cannot_scope(synth: Synth) -> None:
    for lid, statement in _all_statements(synth):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement.get("Resource", [])):
            unscopable = set(_as_list(statement["Action"]))
            assert unscopable <= RESOURCE_STAR_ALLOWED, (lid, unscopable - RESOURCE_STAR_ALLOWED)


def _granted(statements: list[dict[str, Any]], action: str) -> list[str]:
    return sorted(str(r) for s in _granting(statements, action) for r in _as_list(s["Resource"]))


def _under(synth: Synth, *prefixes: str) -> list[str]:
    return sorted(str(_objects_under(synth, prefix)) for prefix in prefixes)


# Where finalize keeps a verified upload (functions.data.keys.kept_upload): per track or album.
KEPT = ("tracks/*/uploaded/", "albums/*/uploaded/")


def test_api_function_may_put_objects_only_under_uploads_and_kept_uploads(synth: Synth) -> None:
    statements = _statements(synth, "/Api/FunctionRole/DefaultPolicy/Resource")
    # Presigned PUTs under uploads/; finalize's copy of the verified file into its track or album.
    assert _granted(statements, "s3:PutObject") == _under(synth, "uploads/", *KEPT)
    # Presigned GETs carry the signer's permissions: uploads/ (originals, documents), tracks/
    # (renditions and artwork for /stream and /artwork) and albums/ (the public album cover).
    assert _granted(statements, "s3:GetObject") == _under(synth, "uploads/", "tracks/", "albums/")
    # Deleting a track deletes what it kept and what processing stored (tracks/); an album its
    # cover variants (albums/); a rejected upload its kept copy.
    assert _granted(statements, "s3:DeleteObject") == _under(synth, "uploads/", "tracks/", "albums/", *KEPT)


def test_only_the_api_lists_and_aborts_resumable_uploads_and_only_under_uploads(synth: Synth) -> None:
    api_statements = _statements(synth, "/Api/FunctionRole/DefaultPolicy/Resource")
    for action in ("s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"):
        granted = [r for s in _granting(api_statements, action) for r in _as_list(s["Resource"])]
        assert granted == [_objects_under(synth, "uploads/")], action
        others = [lid for lid, s in _all_statements(synth) if s in _granting([s], action) and s not in api_statements]
        assert others == [], action


def test_api_finalize_and_sweeper_may_start_only_the_workflow(synth: Synth) -> None:
    machine = logical_id_by_path(synth, "/Processing/Workflow/Resource")
    for role in ("Api/FunctionRole", "Ingest/FinalizeRole", "Sweeper/FunctionRole"):
        starts = _granting(_statements(synth, f"/{role}/DefaultPolicy/Resource"), "states:StartExecution")
        assert starts == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}], role


def test_finalize_reads_uploads_and_may_write_only_the_kept_copy(synth: Synth) -> None:
    statements = _statements(synth, "/Ingest/FinalizeRole/DefaultPolicy/Resource")
    assert _granted(statements, "s3:GetObject") == _under(synth, "uploads/")
    assert _granted(statements, "s3:PutObject") == _under(synth, *KEPT)
    assert _granted(statements, "s3:DeleteObject") == _under(synth, "uploads/", *KEPT)


def test_processing_reads_uploads_and_writes_only_tracks_and_album_covers(synth: Synth) -> None:
    statements = _statements(synth, "/Processing/StepRole/DefaultPolicy/Resource")

    # And the one object of the autotag reference snapshot, not its folder.
    media = logical_id_by_path(synth, "/Storage/Media/Resource")
    snapshot = str({"Fn::Join": ["", [{"Fn::GetAtt": [media, "Arn"]}, f"/{AUTOTAG_REFERENCES}"]]})
    assert _granted(statements, "s3:GetObject") == sorted([*_under(synth, "uploads/", "tracks/", "albums/"), snapshot])
    assert _granted(statements, "s3:PutObject") == sorted([*_under(synth, "tracks/", "albums/"), snapshot])
    # A promoted track version deletes the original it replaced (and a failed one its own).
    assert _granted(statements, "s3:DeleteObject") == _under(synth, "uploads/", "tracks/", "albums/")


def test_table_grants_name_tables_and_indexes_and_never_scan(synth: Synth) -> None:
    for lid, statement in _all_statements(synth):
        actions = _as_list(statement["Action"])
        if any(a.startswith("dynamodb:") for a in actions):
            assert "dynamodb:Scan" not in actions, lid
            for resource in _as_list(statement["Resource"]):
                assert "/index/*" not in str(resource), (lid, resource)


def test_api_reads_entitlements_but_cannot_write_them(synth: Synth) -> None:
    entitlements = {"Fn::GetAtt": [logical_id_by_path(synth, "/Tables/Entitlements/Resource"), "Arn"]}
    statements = _statements(synth, "/Api/FunctionRole/DefaultPolicy/Resource")
    on_entitlements = [s for s in statements if entitlements in _as_list(s["Resource"])]
    actions = {a for s in on_entitlements for a in _as_list(s["Action"])}
    assert "dynamodb:GetItem" in actions
    assert not actions & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def test_sweeper_role_is_exactly_logs_tracing_its_tables_and_the_workflows_executions(synth: Synth) -> None:
    specs = {spec.logical_name: spec for spec in table_specs()}
    assert "by_processing" in {index.name for index in specs["Tracks"].indexes}, "the index the sweeper queries"
    machine = logical_id_by_path(synth, "/Processing/Workflow/Resource")
    log_group = logical_id_by_path(synth, "/Sweeper/FunctionLogs/Resource")

    def table_and_indexes(name: str) -> list[Any]:
        table = {"Fn::GetAtt": [logical_id_by_path(synth, f"/Tables/{name}/Resource"), "Arn"]}
        return [table, *({"Fn::Join": ["", [table, f"/index/{index.name}"]]} for index in specs[name].indexes)]

    statements = _statements(synth, "/Sweeper/FunctionRole/DefaultPolicy/Resource")
    assert _unordered_resources(statements) == _unordered_resources(
        [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
            },
            {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
            {
                "Action": sorted([*READ_ACTIONS, *WRITE_ACTIONS]),
                "Effect": "Allow",
                # Artists: the run slots it frees and the waiting uploads it starts.
                "Resource": [
                    *table_and_indexes("Tracks"),
                    *table_and_indexes("Uploads"),
                    *table_and_indexes("Artists"),
                ],
            },
            {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}},
            {
                "Action": "states:DescribeExecution",
                "Effect": "Allow",
                "Resource": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":states:",
                            {"Ref": "AWS::Region"},
                            ":",
                            {"Ref": "AWS::AccountId"},
                            ":execution:",
                            {"Fn::GetAtt": [machine, "Name"]},
                            ":*",
                        ],
                    ]
                },
            },
        ]
    )
    role = synth.properties(logical_id_by_path(synth, "/Sweeper/FunctionRole/Resource"))
    assert "Policies" not in role


def test_processing_may_start_executions_of_its_own_state_machine_only(synth: Synth) -> None:
    """A verdict starts the artist's next waiting upload (functions.domain.intake.run_queue), from a
    policy apart from the role's default one, which every step function depends on (the state
    machine names the functions: it would otherwise depend on itself)."""
    machine = logical_id_by_path(synth, "/Processing/Workflow/Resource")
    hand_off = _statements(synth, "/Processing/HandOffPolicy/Resource")
    assert hand_off == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}]
    default = _statements(synth, "/Processing/StepRole/DefaultPolicy/Resource")
    assert not [s for s in default if any(a.startswith("states:") for a in _as_list(s["Action"]))]


def test_processing_invokes_no_lambda_when_no_processor_is_a_function(synth: Synth) -> None:
    statements = _statements(synth, "/Processing/StepRole/DefaultPolicy/Resource")
    assert not _granting(statements, "lambda:InvokeFunction")


def test_processing_may_invoke_exactly_the_processor_function_and_nothing_for_a_url(variant: Synth) -> None:
    # The variant's stems processor is a Lambda ARN (qualified by an alias), its lyrics processor a URL.
    statements = _statements(variant, "/Processing/StepRole/DefaultPolicy/Resource")
    assert _granting(statements, "lambda:InvokeFunction") == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": VARIANT_CONTEXT["stemsProcessor"]}
    ]


def test_function_roles_carry_no_aws_managed_policies(synth: Synth) -> None:
    for path in ("Api/FunctionRole", "Ingest/FinalizeRole", "Processing/StepRole", "Sweeper/FunctionRole"):
        role = synth.properties(logical_id_by_path(synth, f"/{path}/Resource"))
        assert not role.get("ManagedPolicyArns"), path
