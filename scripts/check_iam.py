#!/usr/bin/env python3
"""Least-privilege check of the IAM policies in a CloudFormation/SAM template.

Fails (exit 1) when an Allow statement anywhere under Resources (inline
policies of AWS::IAM::* resources, `Policies:` of serverless functions,
resource policies such as queue or bucket policies) grants:

- an Action that is `*` or a whole service (`dynamodb:*`), or uses NotAction;
- a Resource that is `*`, every resource of a type or service in an ARN
  (`arn:aws:dynamodb:*:*:table/*`, `arn:aws:s3:::*`), or uses NotResource;
- an API Gateway `execute-api` ARN that does not name the API, the stage and
  the method (or WebSocket route key): `API/*`, `API/*/POST/@connections/*`,
  `API/STAGE/*/@connections/*` (ManageConnections on every stage, or
  GET/POST/DELETE where PostToConnection needs POST).

It also fails on AWS managed policies that grant everything or a whole
service (AdministratorAccess, PowerUserAccess, *FullAccess) named in
`Policies:` or `ManagedPolicyArns:`.

Two resource-based grants are checked too:

- an `AWS::Lambda::Permission` for API Gateway (`apigateway.amazonaws.com`)
  must have a `SourceArn` that names one API (`API/STAGE/...` or
  `API/authorizers/ID`): without one, any API in any account may invoke
  the function;
- an `AWS::Serverless::HttpApi` whose `DefinitionBody` declares a security
  scheme (an authorizer) must list every HttpApi event route of the
  functions on it, each with a `security` entry: SAM would add a route
  missing there without any authorizer. A listed route that no function
  serves fails as well.

And the scopes of those routes (shared/app/src/access.rs names them): every
route with a `security` lists scopes, each one of READ_SCOPE / WRITE_SCOPE
as that file defines them; a route that writes (PUT, PATCH, DELETE, or a
POST other than POST /requests) needs exactly the write scope; POST
/requests, which carries reports and imports, lists both (its handler
checks the one each kind needs).

SAM policy templates (`- DynamoDBReadPolicy: {...}`) are not statements and
are left alone: they are scoped by their parameters.

Under-privilege, and grants no code uses (`--code`, the default when the
adapters' sources are beside the template): every AWS SDK operation each
function's code can call is mapped to its IAM action and resource and
checked against that function's statements, both ways. The SDK calls are
read from the adapters' sources (shared/aws/src/*.rs), per method of
each adapter and through the helper methods it calls (`self.helper(...)`);
a TransactWriteItems is authorised per item (Put -> PutItem, Delete ->
DeleteItem, Update -> UpdateItem). Which port methods each function calls
is declared in FUNCTION_CALLS below, beside the handler code that makes
those calls; a method missing there shows as a missing grant once the
template lacks it, an extra one as an unused grant.

Usage: check_iam.py [TEMPLATE] [--root=DIR] [--no-code]   (default: template.yaml;
DIR, where shared/aws/src is: the template's directory)
Needs PyYAML (it comes with the project's .venv, via cfn-lint and moto).
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

# --- YAML with CloudFormation's short-form tags -----------------------------


class CfnLoader(yaml.SafeLoader):
    """A safe loader that turns `!Ref x` into `{"Ref": "x"}`,
    `!GetAtt a.b` into `{"Fn::GetAtt": ["a", "b"]}`, and `!Sub`, `!Join`,
    `!If`, ... into their `Fn::` long forms."""


def _construct_cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a CloudFormation template (no top-level mapping)")
    return doc


# --- Values: the literal strings an intrinsic can produce --------------------


def possible_strings(value: Any, params: dict[str, Any]) -> Iterator[str]:
    """Every string `value` may evaluate to, as far as the template alone
    tells: both branches of an `Fn::If`, a parameter's default for a `Ref`,
    `Fn::Sub` with a parameter's default or a literal of its variable map
    for `${Name}` and `{var}` for anything else (a resource, an attribute,
    a pseudo parameter). A list yields each item."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from possible_strings(item, params)
    elif isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            param = params.get(arg)
            if isinstance(param, dict) and "Default" in param:
                default = param["Default"]
                if param.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                    yield from (item.strip() for item in default.split(","))
                else:
                    yield from possible_strings(default, params)
            # A resource's Ref or a parameter without a default: a name
            # chosen at deploy time, never a wildcard written here.
        elif key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            yield from possible_strings(arg[1], params)
            yield from possible_strings(arg[2], params)
        elif key == "Fn::Sub":
            yield from _sub_strings(arg, params)
        elif key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            sep, parts = arg
            if isinstance(parts, list) and isinstance(sep, str):
                pieces = []
                for part in parts:
                    options = list(possible_strings(part, params))
                    pieces.append(options[0] if len(options) == 1 else "{var}")
                yield sep.join(pieces)
        elif key in ("Fn::Select", "Fn::FindInMap", "Fn::GetAtt", "Fn::ImportValue", "Fn::Split"):
            # Cannot be evaluated here; a literal list argument is checked.
            if key == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
                yield from possible_strings(arg[1], params)


SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def _sub_strings(arg: Any, params: dict[str, Any]) -> Iterator[str]:
    """The strings an `Fn::Sub` may produce: each `${Name}` is replaced by
    every value its variable map or a parameter's default may give, else by
    `{var}` (never a wildcard written in the template)."""
    if isinstance(arg, list) and arg:
        text = arg[0]
        variables = arg[1] if len(arg) > 1 and isinstance(arg[1], dict) else {}
    else:
        text, variables = arg, {}
    if not isinstance(text, str):
        return
    names = list(dict.fromkeys(SUB_VARIABLE.findall(text)))
    choices = []
    for name in names:
        if name in variables:
            options = list(possible_strings(variables[name], params))
        else:
            param = params.get(name)
            options = []
            if isinstance(param, dict) and isinstance(param.get("Default"), (str, int, float)):
                options = [str(param["Default"])]
        choices.append(list(dict.fromkeys(options)) or ["{var}"])
    for combination in itertools.product(*choices):
        values = dict(zip(names, combination))
        yield SUB_VARIABLE.sub(lambda m: values[m.group(1)], text)


# --- The checks ---------------------------------------------------------------

SERVICE_WIDE_ACTION = re.compile(r"^[A-Za-z0-9-]+:\*$")
# arn:partition:service:region:account:resource
ARN = re.compile(r"^arn:[^:]*:(?P<service>[^:]*):[^:]*:[^:]*:(?P<resource>.*)$")
# ARN resource parts that start with a resource type: `table/NAME`,
# `function:NAME`. A wildcard NAME (`table/*`, `table/*/index/*`) is every
# resource of the type. (An S3 `bucket/*` names one bucket's objects.)
RESOURCE_TYPES = {
    "table", "function", "layer", "log-group", "stream", "key", "alias",
    "secret", "parameter", "stateMachine", "activity", "rule", "event-bus",
    "role", "policy", "user", "group", "topic", "repository", "cluster",
}
BROAD_MANAGED_POLICY = re.compile(r"(?:^|/)(?:AdministratorAccess|PowerUserAccess|[A-Za-z0-9]*FullAccess)(?:$|[^A-Za-z0-9])")


def broad_action(action: str) -> bool:
    return action.strip() == "*" or bool(SERVICE_WIDE_ACTION.match(action.strip()))


def broad_resource(resource: str) -> bool:
    resource = resource.strip()
    if resource == "*":
        return True
    m = ARN.match(resource)
    if not m:
        return False  # `${Table.Arn}/index/by_version` and the like
    segments = re.split(r"[/:]", m.group("resource"))
    if segments[0] == "*":
        return True  # `arn:aws:s3:::*`, `arn:aws:sqs:REGION:ACCOUNT:*`
    if m.group("service") == "execute-api":
        # API/STAGE/METHOD/PATH (REST, HTTP, @connections) or
        # API/STAGE/ROUTE-KEY (WebSocket routes): the API, the stage and the
        # method or route key must be named.
        parts = m.group("resource").split("/")
        return len(parts) < 3 or any("*" in part for part in parts[:3])
    return segments[0] in RESOURCE_TYPES and len(segments) > 1 and segments[1] == "*"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement under `node`: any mapping with a `Statement`."""
    if isinstance(node, dict):
        if "Statement" in node:
            for i, st in enumerate(as_list(node["Statement"])):
                if isinstance(st, dict):
                    yield f"{path}.Statement[{i}]", st
        for key, value in node.items():
            if key != "Statement":
                yield from statements(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statements(value, f"{path}[{i}]")


def managed_policy_names(resource: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    props = resource.get("Properties") or {}
    if not isinstance(props, dict):
        return
    rtype = resource.get("Type", "")
    if rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for i, p in enumerate(as_list(props.get("Policies") or [])):
            if not isinstance(p, dict):
                yield f"Properties.Policies[{i}]", p
            elif set(p) <= {"Ref", "Fn::Sub", "Fn::Join", "Fn::If"}:
                yield f"Properties.Policies[{i}]", p
    for i, p in enumerate(as_list(props.get("ManagedPolicyArns") or [])):
        yield f"Properties.ManagedPolicyArns[{i}]", p


def check(template: dict[str, Any]) -> list[str]:
    params = template.get("Parameters") or {}
    resources = template.get("Resources") or {}
    problems: list[str] = []
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        for where, st in statements(resource.get("Properties") or {}, f"{name}.Properties"):
            if str(st.get("Effect", "Allow")) != "Allow":
                continue  # a Deny is never too broad
            label = f"{where}" + (f" (Sid {st['Sid']})" if "Sid" in st else "")
            for key in ("NotAction", "NotResource"):
                if key in st:
                    problems.append(f"{label}: Allow with {key} grants everything not listed")
            for action in possible_strings(st.get("Action", []), params):
                if broad_action(action):
                    problems.append(f"{label}: Action {action!r} grants a whole service or everything")
            for res in possible_strings(st.get("Resource", []), params):
                if broad_resource(res):
                    what = ("does not name one API, stage and method (or route key)"
                            if ":execute-api:" in res else "covers every resource (of a type)")
                    problems.append(f"{label}: Resource {res!r} {what}")
        for where, policy in managed_policy_names(resource):
            for text in possible_strings(policy, params):
                if BROAD_MANAGED_POLICY.search(text):
                    problems.append(f"{name}.{where}: managed policy {text!r} grants a whole service or everything")
    return problems


def check_invoke_permissions(template: dict[str, Any]) -> list[str]:
    """API Gateway's permissions to invoke functions name their API."""
    params = template.get("Parameters") or {}
    problems: list[str] = []
    for name, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Lambda::Permission":
            continue
        props = resource.get("Properties") or {}
        principals = list(possible_strings(props.get("Principal", ""), params))
        if not any(p.startswith("apigateway.") for p in principals):
            continue
        arns = list(possible_strings(props.get("SourceArn"), params)) if "SourceArn" in props else []
        if not arns:
            problems.append(f"{name}: API Gateway may invoke the function from any API (no SourceArn)")
        for arn in arns:
            m = ARN.match(arn)
            parts = m.group("resource").split("/") if m and m.group("service") == "execute-api" else []
            if len(parts) < 2 or "*" in parts[0] or not parts[1]:
                problems.append(f"{name}: SourceArn {arn!r} does not name one API and its stage or authorizer")
    return problems


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace", "x-amazon-apigateway-any-method"}


def _branches(value: Any) -> list[Any]:
    """Both branches of an `Fn::If` (recursively), else the value itself."""
    if isinstance(value, dict) and set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list) and len(value["Fn::If"]) == 3:
        return _branches(value["Fn::If"][1]) + _branches(value["Fn::If"][2])
    return [value]


def check_http_routes_authorized(template: dict[str, Any]) -> list[str]:
    """Every route of an HTTP API with an authorizer in its OpenAPI body
    carries a `security` there, and every route listed there is served."""
    resources = template.get("Resources") or {}
    events: dict[str, dict[tuple[str, str], str]] = {}
    for fname, fn in resources.items():
        if not isinstance(fn, dict) or fn.get("Type") != "AWS::Serverless::Function":
            continue
        for ename, event in ((fn.get("Properties") or {}).get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                continue
            eprops = event.get("Properties") or {}
            api = eprops.get("ApiId")
            if isinstance(api, dict) and isinstance(api.get("Ref"), str):
                route = (str(eprops.get("Path", "")), str(eprops.get("Method", "")).lower())
                events.setdefault(api["Ref"], {})[route] = f"{fname}.Events.{ename}"
    problems: list[str] = []
    for name, api in resources.items():
        if not isinstance(api, dict) or api.get("Type") != "AWS::Serverless::HttpApi":
            continue
        body = (api.get("Properties") or {}).get("DefinitionBody")
        if not isinstance(body, dict):
            continue
        schemes = [c.get("securitySchemes") for c in _branches(body.get("components")) if isinstance(c, dict)]
        if not any(schemes):
            continue
        listed: dict[tuple[str, str], Any] = {}
        for path, item in (body.get("paths") or {}).items():
            for branch in _branches(item):
                for method, operation in (branch.items() if isinstance(branch, dict) else []):
                    if method.lower() in HTTP_METHODS:
                        listed[(path, method.lower())] = operation
        served = events.get(name, {})
        for route, where in sorted(served.items()):
            operation = listed.get(route)
            if not isinstance(operation, dict) or "security" not in operation:
                problems.append(
                    f"{where}: {route[1].upper()} {route[0]} is not in {name}'s DefinitionBody with a "
                    "`security`, so it would have no authorizer"
                )
        for route in sorted(set(listed) - set(served)):
            problems.append(f"{name}.DefinitionBody: {route[1].upper()} {route[0]} is listed but no function serves it")
    return problems


ACCESS_RS = Path(__file__).resolve().parent.parent / "shared" / "app" / "src" / "access.rs"
# The one route that both reads and writes, checked by kind in its handler.
MIXED_ROUTES = {("/requests", "post")}
# Public by design, with an explicit empty `security` (`[]`): the web page,
# its assets and the OpenAPI document, which a browser loads without a
# token; they read no data.
PUBLIC_ROUTES = {("/", "get"), ("/web/{file}", "get"), ("/openapi.json", "get")}
WRITE_METHODS = {"put", "patch", "delete", "post"}


def scope_names() -> tuple[str, str]:
    """READ_SCOPE and WRITE_SCOPE as the code defines them."""
    text = ACCESS_RS.read_text()
    found = dict(re.findall(r'pub const (READ_SCOPE|WRITE_SCOPE): &str = "([^"]+)";', text))
    if set(found) != {"READ_SCOPE", "WRITE_SCOPE"}:
        raise ValueError(f"{ACCESS_RS} does not define READ_SCOPE and WRITE_SCOPE")
    return found["READ_SCOPE"], found["WRITE_SCOPE"]


def check_route_scopes(template: dict[str, Any], read: str, write: str) -> list[str]:
    """Each secured route's scopes: writes need the write scope."""
    problems: list[str] = []
    for name, api in (template.get("Resources") or {}).items():
        if not isinstance(api, dict) or api.get("Type") != "AWS::Serverless::HttpApi":
            continue
        body = (api.get("Properties") or {}).get("DefinitionBody")
        if not isinstance(body, dict):
            continue
        for path, item in (body.get("paths") or {}).items():
            for branch in _branches(item):
                for method, operation in (branch.items() if isinstance(branch, dict) else []):
                    method = method.lower()
                    if method not in HTTP_METHODS or not isinstance(operation, dict):
                        continue
                    for security in _branches(operation.get("security")):
                        if not isinstance(security, list):
                            continue
                        scopes = sorted({str(s) for req in security if isinstance(req, dict)
                                         for listed in req.values() for s in as_list(listed)})
                        where = f"{name}.DefinitionBody: {method.upper()} {path}"
                        if (path, method) in PUBLIC_ROUTES:
                            if security:
                                problems.append(f"{where} is public: its security must be []")
                            continue
                        if not scopes:
                            problems.append(f"{where} names no scope: any token would do")
                        for scope in scopes:
                            if scope not in (read, write):
                                problems.append(f"{where}: scope {scope!r} is neither {read!r} nor {write!r}")
                        if (path, method) in MIXED_ROUTES:
                            if scopes != sorted([read, write]):
                                problems.append(f"{where} carries reads and writes: it lists {read!r} and {write!r}")
                        elif method in WRITE_METHODS and scopes != [write]:
                            problems.append(f"{where} writes: it needs exactly {write!r}, not {scopes}")
    return problems


# --- Under-privilege: the code's SDK calls against the grants -----------------

# Adapter struct -> (source file, template resource its calls act on).
ADAPTERS = {
    "DynamoPeopleStore": ("shared/aws/src/dynamodb.rs", "PeopleTable"),
    "DynamoRequestStore": ("shared/aws/src/dynamodb_requests.rs", "RequestsTable"),
    "DynamoConnectionStore": ("shared/aws/src/dynamodb_connections.rs", "ConnectionsTable"),
    "SqsQueue": ("shared/aws/src/sqs.rs", "JobsQueue"),
    "ManagementApiNotifier": ("shared/aws/src/apigw.rs", "WebSocketApi"),
    "S3ImageStore": ("shared/aws/src/s3.rs", "IndexBucket"),
}

# Function (logical id) -> adapter -> the adapter methods (port methods) its
# code calls. Kept in step with the handlers: the query function reads
# (shared/http/src, search/live.rs), the processor runs jobs
# (jobs/processor.rs, ws/push.rs), the websocket function handles frames
# (ws/handler.rs, jobs/enqueue.rs), the sweeper (jobs/sweeper.rs).
PUSH = {"DynamoConnectionStore": ["subscribers", "unsubscribe", "disconnect"],
        "ManagementApiNotifier": ["post"]}
FUNCTION_CALLS: dict[str, dict[str, list[str]]] = {
    "QueryApiFunction": {
        "DynamoPeopleStore": ["get", "scan", "changes_since"],
        "DynamoRequestStore": ["get"],
        # Cold start from the newest index image (shared/aws/src/wiring.rs).
        "S3ImageStore": ["newest", "load"],
    },
    "EnqueueFunction": {
        "DynamoRequestStore": ["create", "abandon"],
        "SqsQueue": ["send"],
        # PUT / DELETE /people/{id} (shared/http/src/write.rs).
        "DynamoPeopleStore": ["get", "put_batch", "delete_batch"],
    },
    "ProcessorFunction": {
        "DynamoPeopleStore": ["get", "scan", "changes_since", "put_batch", "delete_batch"],
        "DynamoRequestStore": ["get", "start", "finish"],
        "SqsQueue": ["release"],
        "S3ImageStore": ["newest", "load"],
        **PUSH,
    },
    "WebSocketFunction": {
        "DynamoRequestStore": ["create", "get", "abandon"],
        "SqsQueue": ["send"],
        "DynamoConnectionStore": ["connect", "disconnect", "subscribe", "unsubscribe", "subscribers",
                                  "subscriptions"],
        "ManagementApiNotifier": ["post"],
    },
    "SweeperFunction": {
        "DynamoRequestStore": ["stale", "get", "finish"],
        **PUSH,
    },
    # shared/aws/src/image_writer.rs: an index like the query function's
    # (no GetItem: it answers no request), and the images it writes.
    "IndexWriterFunction": {
        "DynamoPeopleStore": ["scan", "changes_since"],
        "S3ImageStore": ["newest", "load", "save"],
    },
}

SDK_ACTIONS = {
    "get_item": "dynamodb:GetItem", "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem", "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query", "scan": "dynamodb:Scan",
    "batch_write_item": "dynamodb:BatchWriteItem", "batch_get_item": "dynamodb:BatchGetItem",
    "transact_write_items": None,  # authorised per item
    "send_message": "sqs:SendMessage", "send_message_batch": "sqs:SendMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "delete_message": "sqs:DeleteMessage", "receive_message": "sqs:ReceiveMessage",
    "post_to_connection": "execute-api:ManageConnections",
    # Index images: ListBucket on the bucket, the rest on its objects
    # (a multipart upload's calls are authorised as PutObject).
    "list_objects_v2": "s3:ListBucket", "get_object": "s3:GetObject",
    "put_object": "s3:PutObject", "create_multipart_upload": "s3:PutObject",
    "upload_part": "s3:PutObject", "complete_multipart_upload": "s3:PutObject",
    "abort_multipart_upload": "s3:AbortMultipartUpload",
}
TRANSACT_ITEMS = {"Put": "dynamodb:PutItem", "Delete": "dynamodb:DeleteItem",
                  "Update": "dynamodb:UpdateItem", "ConditionCheck": "dynamodb:ConditionCheckItem"}
SDK_CALL = re.compile(r"\.(" + "|".join(SDK_ACTIONS) + r")\(\)")
TRANSACT_ITEM = re.compile(r"\b(" + "|".join(TRANSACT_ITEMS) + r")::builder\(")
SELF_CALL = re.compile(r"\bself\.([a-z_][a-z0-9_]*)\(")
FN = re.compile(r"^\s*(?:pub(?:\([a-z]+\))? )?(?:async )?fn ([a-z_][a-z0-9_]*)", re.M)


def adapter_methods(source: str, struct: str) -> dict[str, tuple[set[str], set[str], set[str]]]:
    """Per method of `struct` (in its `impl` blocks): the SDK calls, the
    transaction item kinds and the `self.` methods its body names."""
    methods: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for m in re.finditer(r"^impl(?:<[^>]*>)? (?:[A-Za-z:]+ for )?" + struct + r" \{$", source, re.M):
        depth, i = 0, m.end() - 1
        while True:  # the impl block, by brace depth
            c = source[i]
            depth += c == "{"
            depth -= c == "}"
            i += 1
            if depth == 0:
                break
        block = source[m.end():i]
        starts = [f for f in FN.finditer(block)]
        for n, f in enumerate(starts):
            body = block[f.end(): starts[n + 1].start() if n + 1 < len(starts) else len(block)]
            methods[f.group(1)] = (set(SDK_CALL.findall(body)), set(TRANSACT_ITEM.findall(body)),
                                   set(SELF_CALL.findall(body)))
    return methods


def method_actions(methods: dict[str, tuple[set[str], set[str], set[str]]], name: str) -> set[str]:
    calls, items, seen, todo = set(), set(), set(), [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in methods:
            continue
        seen.add(current)
        c, t, helpers = methods[current]
        calls |= c
        items |= t
        todo.extend(helpers)
    actions = {SDK_ACTIONS[c] for c in calls if SDK_ACTIONS[c]}
    if "transact_write_items" in calls:
        actions |= {TRANSACT_ITEMS[k] for k in items}
    return actions


def _resource_name(value: Any) -> str | None:
    """The template resource a statement's Resource names: `!GetAtt X.Arn`,
    `!Ref X`, or the first `${X...}` of a `!Sub` (with `/index/...` kept)."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            names = [n.split(".")[0] for n in SUB_VARIABLE.findall(text) if not n.startswith("AWS::")]
            if not names:
                return None
            index = re.search(r"(/index/[^\s\"]+)$", text)
            return names[0] + (index.group(1) if index else "")
    return None


def grants(function: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    for _, st in statements(function.get("Properties") or {}, ""):
        if str(st.get("Effect", "Allow")) != "Allow":
            continue
        for action in as_list(st.get("Action", [])):
            for res in as_list(st.get("Resource", [])):
                name = _resource_name(res)
                if isinstance(action, str) and name:
                    found.add((action, name))
    return found


def needed(root: Path, calls: dict[str, list[str]]) -> set[tuple[str, str]]:
    need = set()
    for struct, used in calls.items():
        path, resource = ADAPTERS[struct]
        methods = adapter_methods((root / path).read_text(encoding="utf-8"), struct)
        for method in used:
            if method not in methods:
                raise ValueError(f"{path}: {struct} has no method {method!r} (FUNCTION_CALLS is stale)")
            for action in method_actions(methods, method):
                # The change feed is read from its index, not the table.
                target = (f"{resource}/index/by_version"
                          if struct == "DynamoPeopleStore" and action == "dynamodb:Query" else resource)
                # Objects under the images' prefix; listing is on the bucket.
                if struct == "S3ImageStore" and action != "s3:ListBucket":
                    target = f"{resource}/index/*"
                need.add((action, target))
    return need


def check_code_grants(template: dict[str, Any], root: Path) -> list[str]:
    """Both ways: every action the code needs is granted on its resource,
    and every dynamodb/sqs/execute-api grant is needed by the code."""
    problems: list[str] = []
    resources = template.get("Resources") or {}
    for function, calls in FUNCTION_CALLS.items():
        if function not in resources:
            problems.append(f"{function}: declared in check_iam.py FUNCTION_CALLS but not in the template")
            continue
        need = needed(root, calls)
        have = grants(resources[function])
        for action, res in sorted(need - have):
            problems.append(f"{function}: the code calls {action} on {res}, which its policy does not grant")
        for action, res in sorted(have - need):
            if action.split(":")[0] in ("dynamodb", "sqs", "execute-api", "s3") and action not in POLLER_ACTIONS.get(function, ()):
                problems.append(f"{function}: grants {action} on {res}, which no code of it calls")
    return problems


# Actions Lambda's SQS event source mapping uses with the function's role
# (not the function's code).
POLLER_ACTIONS = {"ProcessorFunction": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")}


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    path = Path(args[0] if args else "template.yaml")
    try:
        template = load_template(path)
    except (OSError, yaml.YAMLError, ValueError) as e:
        print(f"check_iam: cannot read {path}: {e}", file=sys.stderr)
        return 2
    try:
        read, write = scope_names()
    except (OSError, ValueError) as e:
        print(f"check_iam: {e}", file=sys.stderr)
        return 2
    problems = (check(template) + check_invoke_permissions(template) + check_http_routes_authorized(template)
                + check_route_scopes(template, read, write))
    roots = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--root=")]
    root = Path(roots[0]).resolve() if roots else path.resolve().parent
    code_checked = (root / ADAPTERS["DynamoPeopleStore"][0]).exists() and "--no-code" not in argv
    if code_checked:
        problems += check_code_grants(template, root)
    if problems:
        print(f"check_iam: {path}: {len(problems)} IAM problem(s) (grants broader than least privilege, or missing):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print("Name the actions and the resources (table ARN, index ARN, queue ARN, API stage) a function needs.", file=sys.stderr)
        return 1
    count = sum(1 for r in (template.get("Resources") or {}).values()
                if isinstance(r, dict) for _ in statements(r.get("Properties") or {}, ""))
    print(f"check_iam: {path}: {count} policy statement(s), none with a wildcard action or resource"
          + ("; every SDK call of the code granted, no grant unused" if code_checked else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
