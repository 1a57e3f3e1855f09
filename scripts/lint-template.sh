#!/usr/bin/env bash
# Checks template.yaml offline, with the pinned tools in .venv (install them
# with scripts/python-tools.sh): `sam validate --lint`, `cfn-lint`, and the
# least-privilege check scripts/check_iam.py (no wildcard IAM action or
# resource, no execute-api grant on every stage or method; every SDK call
# of each function's code granted, and no grant its code does not use). Needs no AWS
# credentials and no configured region.
# Usage: scripts/lint-template.sh [TEMPLATE]
set -euo pipefail
cd "$(dirname "$0")/.."
template="${1:-template.yaml}"
venv=.venv/bin
for tool in sam cfn-lint python; do
    if [ ! -x "$venv/$tool" ]; then
        echo "lint-template: $venv/$tool is missing; run scripts/python-tools.sh" >&2
        exit 1
    fi
done

# Offline and credential-free: no telemetry, no instance-metadata lookups
# for credentials, and an explicit region (sam validate insists on one).
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
unset AWS_DEFAULT_REGION AWS_REGION

echo "== sam validate --lint"
"$venv/sam" validate --lint --template-file "$template" --region us-east-1

echo "== cfn-lint"
"$venv/cfn-lint" "$template"
echo "cfn-lint: no findings"

echo "== least privilege (scripts/check_iam.py)"
# The checker must be able to fail: a template that grants dynamodb:* on *
# is rejected, or the check itself is broken.
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
cat > "$probe/broad.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:*
              Resource: !Sub "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"
EOF
if "$venv/python" scripts/check_iam.py "$probe/broad.yaml" 2>/dev/null; then
    echo "lint-template: check_iam.py accepted a dynamodb:* policy; the check is broken" >&2
    exit 1
fi
# ... and ManageConnections on every stage of an API.
cat > "$probe/stages.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: execute-api:ManageConnections
              Resource: !Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/POST/@connections/*"
EOF
if "$venv/python" scripts/check_iam.py "$probe/stages.yaml" 2>/dev/null; then
    echo "lint-template: check_iam.py accepted ManageConnections on every stage; the check is broken" >&2
    exit 1
fi
# ... and a route that writes with only the read scope.
cat > "$probe/scopes.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        paths:
          /people/{id}:
            delete:
              security: [{JwtAuthorizer: [people:read]}]
EOF
if "$venv/python" scripts/check_iam.py "$probe/scopes.yaml" 2>/dev/null; then
    echo "lint-template: check_iam.py accepted a DELETE route with only people:read; the check is broken" >&2
    exit 1
fi
# ... and a function whose code calls an action its policy lacks (the
# processor's unsubscribe is a transaction of Deletes: dynamodb:DeleteItem).
python_strip_delete='import sys,re; t=open(sys.argv[1]).read(); i=t.index("  ProcessorFunction:"); j=t.index("  ProcessorJobsEventSource:"); print(t[:i]+t[i:j].replace("                - dynamodb:DeleteItem\n","")+t[j:], end="")'
"$venv/python" -c "$python_strip_delete" "$template" > "$probe/under.yaml"
if "$venv/python" scripts/check_iam.py "$probe/under.yaml" --root=. 2>/dev/null; then
    echo "lint-template: check_iam.py accepted a processor without dynamodb:DeleteItem; the check is broken" >&2
    exit 1
fi
"$venv/python" scripts/check_iam.py "$template"
echo "lint-template: OK"
