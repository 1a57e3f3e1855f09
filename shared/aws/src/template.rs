//! What template.yaml declares, read from it (feature `template`): which
//! function each HTTP route and each WebSocket route goes to, the SQS event
//! source mapping (batch size, batching window), the queues (visibility
//! timeout, retention, redrive policy) and the tables' keys. The local
//! server and `admin` use it, so that what runs on one machine is what the
//! template deploys, not a copy of it that can drift.
//!
//! CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) are read as
//! their long forms; a `!Ref` to a parameter resolves to its `Default`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

/// The template this build was made from.
pub const TEMPLATE_YAML: &str = include_str!("../../../template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

/// A function of the template, by both of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// Its logical id (`QueryApiFunction`): the name under `sam local`.
    pub logical_id: String,
    /// Its binary (`query-api`): the name under `cargo lambda`.
    pub binary: String,
}

/// An `HttpApi` event of a function: `GET /people/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    /// With `{name}` path parameters, as API Gateway's route keys write them.
    pub path: String,
    pub function: FunctionRef,
}

impl HttpRoute {
    /// API Gateway's route key, `GET /people/{id}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters if `path` (no query string) matches this route.
    pub fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut params = BTreeMap::new();
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return Some(params),
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                    params.insert(w[1..w.len() - 1].to_owned(), g.to_owned());
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return None,
            }
        }
    }
}

/// The WebSocket API: its route selection and the routes besides the
/// `$connect`, `$disconnect` and `$default` ones, all to `function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketApi {
    pub route_selection: String,
    /// Every route key, `$connect` and the others.
    pub routes: Vec<String>,
    pub function: FunctionRef,
}

/// The SQS event source mapping of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventSource {
    pub function: FunctionRef,
    /// The queue's logical id.
    pub queue: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
}

/// A `Schedule` event of a function: EventBridge invokes it every `rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The event's name in the template (`Every5Minutes`).
    pub name: String,
    pub function: FunctionRef,
    pub rate: Duration,
}

/// A lifecycle rule of an `AWS::S3::Bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    pub expiration_days: Option<u32>,
    pub abort_incomplete_upload_days: Option<u32>,
}

/// An `AWS::S3::Bucket`: what `admin create-bucket` makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub logical_id: String,
    /// `SSEAlgorithm` of its default encryption (`AES256`), if any.
    pub encryption: Option<String>,
    /// All four public-access blocks on.
    pub blocks_public_access: bool,
    pub lifecycle: Vec<LifecycleRule>,
}

/// An `AWS::SQS::Queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<Duration>,
    pub retention: Option<Duration>,
    /// The dead-letter queue's logical id and the receives before a message
    /// moves there.
    pub redrive: Option<(String, u32)>,
}

/// An `AWS::DynamoDB::Table`: its attribute definitions, key schema, global
/// secondary indexes and TTL attribute, as the template writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (name, type) of every attribute definition, sorted by name.
    pub attributes: Vec<(String, String)>,
    /// (name, HASH or RANGE).
    pub key: Vec<(String, String)>,
    /// (index name, its key).
    pub indexes: Vec<(String, Vec<(String, String)>)>,
    /// (index name, its `ProjectionType`, its `NonKeyAttributes`).
    pub projections: Vec<(String, String, Vec<String>)>,
    /// `PAY_PER_REQUEST` or `PROVISIONED` (CloudFormation's default).
    pub billing_mode: String,
    pub ttl_attribute: Option<String>,
}

/// The template, parsed.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    /// The template this build was made from.
    pub fn built_in() -> Self {
        Self::parse(TEMPLATE_YAML).expect("the built-in template.yaml parses (tested)")
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
        Ok(Self {
            root: to_json(yaml),
        })
    }

    fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    }

    fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resources()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
    }

    fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.root.get("Resources")?.get(logical_id)
    }

    /// A scalar property, with a `!Ref` to a parameter resolved to the
    /// parameter's default.
    fn scalar(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Object(o) => {
                let name = o.get("Ref")?.as_str()?;
                let default = self.root.get("Parameters")?.get(name)?.get("Default")?;
                self.scalar(default)
            }
            _ => None,
        }
    }

    fn number(&self, value: Option<&Value>, what: &str) -> Result<Option<u64>, TemplateError> {
        let Some(value) = value else { return Ok(None) };
        let text = self.scalar(value).ok_or_else(|| {
            shape(format!(
                "{what} is not a number or a parameter with a default"
            ))
        })?;
        text.parse()
            .map(Some)
            .map_err(|_| shape(format!("{what} is {text:?}, not a whole number")))
    }

    /// The function `logical_id`, with its binary name.
    pub fn function(&self, logical_id: &str) -> Result<FunctionRef, TemplateError> {
        let resource = self
            .resource(logical_id)
            .ok_or_else(|| shape(format!("no resource {logical_id}")))?;
        let binary = resource
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                shape(format!(
                    "{logical_id} has no Metadata.BuildProperties.Binary"
                ))
            })?;
        Ok(FunctionRef {
            logical_id: logical_id.to_owned(),
            binary: binary.to_owned(),
        })
    }

    /// Every `HttpApi` event of every function.
    pub fn http_routes(&self) -> Result<Vec<HttpRoute>, TemplateError> {
        let mut routes = Vec::new();
        for (id, function) in self.resources_of("AWS::Serverless::Function") {
            let events = function
                .pointer("/Properties/Events")
                .and_then(Value::as_object);
            for event in events.into_iter().flatten().map(|(_, e)| e) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let prop = |name: &str| {
                    event
                        .pointer(&format!("/Properties/{name}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| shape(format!("an HttpApi event of {id} has no {name}")))
                };
                routes.push(HttpRoute {
                    method: prop("Method")?.to_ascii_uppercase(),
                    path: prop("Path")?,
                    function: self.function(id)?,
                });
            }
        }
        Ok(routes)
    }

    /// Every `Schedule` event of every function, with its `rate(...)`
    /// (`cron(...)` expressions are refused: the template has none).
    pub fn schedules(&self) -> Result<Vec<Schedule>, TemplateError> {
        let mut schedules = Vec::new();
        for (id, function) in self.resources_of("AWS::Serverless::Function") {
            let events = function
                .pointer("/Properties/Events")
                .and_then(Value::as_object);
            for (name, event) in events.into_iter().flatten() {
                if event.get("Type").and_then(Value::as_str) != Some("Schedule") {
                    continue;
                }
                let expression = event
                    .pointer("/Properties/Schedule")
                    .and_then(|s| self.scalar(s))
                    .ok_or_else(|| {
                        shape(format!("the Schedule event {name} of {id} has no Schedule"))
                    })?;
                let rate = parse_rate(&expression).ok_or_else(|| {
                    shape(format!(
                        "the Schedule event {name} of {id} is {expression:?}, not rate(N minutes|hours|days)"
                    ))
                })?;
                schedules.push(Schedule {
                    name: name.clone(),
                    function: self.function(id)?,
                    rate,
                });
            }
        }
        Ok(schedules)
    }

    /// The WebSocket API (the template has one), and the function its
    /// routes' integration invokes.
    pub fn websocket(&self) -> Result<WebSocketApi, TemplateError> {
        let (api_id, api) = self
            .resources_of("AWS::ApiGatewayV2::Api")
            .find(|(_, a)| {
                a.pointer("/Properties/ProtocolType")
                    .and_then(Value::as_str)
                    == Some("WEBSOCKET")
            })
            .ok_or_else(|| shape("no WebSocket API"))?;
        let route_selection = api
            .pointer("/Properties/RouteSelectionExpression")
            .and_then(Value::as_str)
            .unwrap_or("$request.body.action")
            .to_owned();
        let mut routes = Vec::new();
        let mut functions = Vec::new();
        for (id, route) in self.resources_of("AWS::ApiGatewayV2::Route") {
            if route
                .pointer("/Properties/ApiId/Ref")
                .and_then(Value::as_str)
                != Some(api_id)
            {
                continue;
            }
            let key = route
                .pointer("/Properties/RouteKey")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("route {id} has no RouteKey")))?;
            routes.push(key.to_owned());
            let target = route
                .pointer("/Properties/Target/Fn::Sub")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("route {id} has no !Sub Target")))?;
            let integration = sub_reference(target)
                .ok_or_else(|| shape(format!("route {id}: no integration in {target:?}")))?;
            let uri = self
                .resource(integration)
                .and_then(|i| i.pointer("/Properties/IntegrationUri/Fn::Sub"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    shape(format!(
                        "integration {integration} has no !Sub IntegrationUri"
                    ))
                })?;
            let function = sub_references(uri)
                .find_map(|r| r.strip_suffix(".Arn"))
                .ok_or_else(|| {
                    shape(format!("integration {integration}: no function in {uri:?}"))
                })?;
            functions.push(function.to_owned());
        }
        functions.dedup();
        let [function] = functions.as_slice() else {
            return Err(shape(format!(
                "the WebSocket routes go to {functions:?}; the local server supports one function"
            )));
        };
        Ok(WebSocketApi {
            route_selection,
            routes,
            function: self.function(function)?,
        })
    }

    /// The SQS event source mapping (the template has one).
    pub fn sqs_event_source(&self) -> Result<SqsEventSource, TemplateError> {
        let (id, mapping) = self
            .resources_of("AWS::Lambda::EventSourceMapping")
            .next()
            .ok_or_else(|| shape("no AWS::Lambda::EventSourceMapping"))?;
        let function = mapping
            .pointer("/Properties/FunctionName/Ref")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{id} has no FunctionName !Ref")))?;
        let queue = mapping
            .pointer("/Properties/EventSourceArn/Fn::GetAtt")
            .and_then(|g| g.get(0))
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{id} has no EventSourceArn !GetAtt")))?;
        let props = mapping.get("Properties");
        let batch_size = self
            .number(props.and_then(|p| p.get("BatchSize")), "BatchSize")?
            .unwrap_or(10);
        let window = self
            .number(
                props.and_then(|p| p.get("MaximumBatchingWindowInSeconds")),
                "MaximumBatchingWindowInSeconds",
            )?
            .unwrap_or(0);
        let report = props
            .and_then(|p| p.get("FunctionResponseTypes"))
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures"));
        Ok(SqsEventSource {
            function: self.function(function)?,
            queue: queue.to_owned(),
            batch_size: batch_size as usize,
            batching_window: Duration::from_secs(window),
            report_batch_item_failures: report,
        })
    }

    /// The queue `logical_id`.
    pub fn queue(&self, logical_id: &str) -> Result<QueueSpec, TemplateError> {
        let queue = self
            .resource(logical_id)
            .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::SQS::Queue"))
            .ok_or_else(|| shape(format!("no queue {logical_id}")))?;
        let prop = |name: &str| queue.pointer(&format!("/Properties/{name}"));
        let secs = |name: &str| -> Result<Option<Duration>, TemplateError> {
            Ok(self.number(prop(name), name)?.map(Duration::from_secs))
        };
        let redrive = match prop("RedrivePolicy") {
            None => None,
            Some(policy) => {
                let dlq = policy
                    .pointer("/deadLetterTargetArn/Fn::GetAtt")
                    .and_then(|g| g.get(0))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        shape(format!(
                            "{logical_id}: deadLetterTargetArn is not a !GetAtt"
                        ))
                    })?;
                let max = self
                    .number(policy.get("maxReceiveCount"), "maxReceiveCount")?
                    .ok_or_else(|| shape(format!("{logical_id}: no maxReceiveCount")))?;
                Some((dlq.to_owned(), max as u32))
            }
        };
        Ok(QueueSpec {
            logical_id: logical_id.to_owned(),
            visibility_timeout: secs("VisibilityTimeout")?,
            retention: secs("MessageRetentionPeriod")?,
            redrive,
        })
    }

    /// The bucket `logical_id`.
    pub fn bucket(&self, logical_id: &str) -> Result<BucketSpec, TemplateError> {
        let bucket = self
            .resource(logical_id)
            .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::S3::Bucket"))
            .ok_or_else(|| shape(format!("no bucket {logical_id}")))?;
        let prop = |name: &str| bucket.pointer(&format!("/Properties/{name}"));
        let encryption = prop("BucketEncryption/ServerSideEncryptionConfiguration")
            .and_then(Value::as_array)
            .and_then(|rules| rules.first())
            .and_then(|r| r.pointer("/ServerSideEncryptionByDefault/SSEAlgorithm"))
            .and_then(|a| self.scalar(a));
        let blocks_public_access = prop("PublicAccessBlockConfiguration").is_some_and(|b| {
            [
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            ]
            .iter()
            .all(|k| b.get(*k) == Some(&Value::Bool(true)))
        });
        let days =
            |rule: &Value, pointer: &str, what: &str| -> Result<Option<u32>, TemplateError> {
                Ok(self
                    .number(rule.pointer(pointer), what)?
                    .map(|d| d.min(u64::from(u32::MAX)) as u32))
            };
        let mut lifecycle = Vec::new();
        for rule in prop("LifecycleConfiguration/Rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if rule.get("Status").and_then(Value::as_str) != Some("Enabled") {
                continue;
            }
            lifecycle.push(LifecycleRule {
                id: rule
                    .get("Id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                prefix: rule
                    .get("Prefix")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                expiration_days: days(rule, "/ExpirationInDays", "ExpirationInDays")?,
                abort_incomplete_upload_days: days(
                    rule,
                    "/AbortIncompleteMultipartUpload/DaysAfterInitiation",
                    "DaysAfterInitiation",
                )?,
            });
        }
        Ok(BucketSpec {
            logical_id: logical_id.to_owned(),
            encryption,
            blocks_public_access,
            lifecycle,
        })
    }

    /// The table `logical_id`.
    pub fn table(&self, logical_id: &str) -> Result<TableSpec, TemplateError> {
        let table = self
            .resource(logical_id)
            .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
            .ok_or_else(|| shape(format!("no table {logical_id}")))?;
        let pairs = |list: Option<&Value>, a: &str, b: &str| -> Vec<(String, String)> {
            list.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some((
                        e.get(a)?.as_str()?.to_owned(),
                        e.get(b)?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        };
        let mut attributes = pairs(
            table.pointer("/Properties/AttributeDefinitions"),
            "AttributeName",
            "AttributeType",
        );
        attributes.sort();
        let key = pairs(
            table.pointer("/Properties/KeySchema"),
            "AttributeName",
            "KeyType",
        );
        let indexes = table
            .pointer("/Properties/GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| {
                Some((
                    i.get("IndexName")?.as_str()?.to_owned(),
                    pairs(i.get("KeySchema"), "AttributeName", "KeyType"),
                ))
            })
            .collect();
        let projections = table
            .pointer("/Properties/GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let projection = i.get("Projection")?;
                Some((
                    i.get("IndexName")?.as_str()?.to_owned(),
                    projection.get("ProjectionType")?.as_str()?.to_owned(),
                    projection
                        .get("NonKeyAttributes")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| Some(a.as_str()?.to_owned()))
                        .collect(),
                ))
            })
            .collect();
        let billing_mode = table
            .pointer("/Properties/BillingMode")
            .and_then(|b| self.scalar(b))
            .unwrap_or_else(|| "PROVISIONED".to_owned());
        let ttl_attribute = table
            .pointer("/Properties/TimeToLiveSpecification")
            .filter(|t| t.get("Enabled") == Some(&Value::Bool(true)))
            .and_then(|t| t.get("AttributeName")?.as_str())
            .map(str::to_owned);
        Ok(TableSpec {
            logical_id: logical_id.to_owned(),
            attributes,
            key,
            indexes,
            projections,
            billing_mode,
            ttl_attribute,
        })
    }
}

/// `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)` as EventBridge
/// writes them.
fn parse_rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|&n| n > 0)?;
    let unit_secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(unit_secs)?))
}

/// Every `${Name}` of a `!Sub` string.
fn sub_references(mut text: &str) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        let start = text.find("${")? + 2;
        let end = start + text[start..].find('}')?;
        let name = &text[start..end];
        text = &text[end..];
        Some(name)
    })
}

/// The first `${Name}` of a `!Sub` string that is not a pseudo parameter.
fn sub_reference(text: &str) -> Option<&str> {
    sub_references(text).find(|r| !r.starts_with("AWS::"))
}

/// YAML to JSON, CloudFormation's short tags to their long forms
/// (`!Ref X` to `{"Ref": "X"}`, `!GetAtt A.B` to `{"Fn::GetAtt": ["A", "B"]}`,
/// `!Sub s` to `{"Fn::Sub": s}`, ...).
fn to_json(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map_or(Value::Null, Value::from)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        Y::Number(n) => n.to_string(),
                        Y::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v)))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            let (key, value) = match name {
                "Ref" | "Condition" => (name.to_owned(), value),
                "GetAtt" => {
                    let value = match value {
                        Value::String(s) => match s.split_once('.') {
                            Some((a, b)) => Value::from(vec![a.to_owned(), b.to_owned()]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), value)
                }
                other => (format!("Fn::{other}"), value),
            };
            let mut object = Map::new();
            object.insert(key, value);
            Value::Object(object)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_template_declares_what_the_local_server_runs() {
        let t = Template::built_in();
        let routes = t.http_routes().unwrap();
        let find = |key: &str| {
            routes
                .iter()
                .find(|r| r.route_key() == key)
                .unwrap_or_else(|| panic!("no route {key}"))
        };
        assert_eq!(find("GET /people/{id}").function.binary, "query-api");
        assert_eq!(
            find("POST /requests").function.logical_id,
            "EnqueueFunction"
        );
        let ws = t.websocket().unwrap();
        assert_eq!(ws.route_selection, "$request.body.action");
        assert_eq!(ws.function.binary, "websocket");
        for key in [
            "$connect",
            "$disconnect",
            "$default",
            "subscribe",
            "process",
        ] {
            assert!(
                ws.routes.iter().any(|r| r == key),
                "{key} in {:?}",
                ws.routes
            );
        }
        let esm = t.sqs_event_source().unwrap();
        assert_eq!(esm.function.binary, "processor");
        assert_eq!(esm.queue, "JobsQueue");
        assert_eq!(esm.batch_size, 10);
        assert_eq!(esm.batching_window, Duration::from_secs(1));
        assert!(esm.report_batch_item_failures);
        let queue = t.queue("JobsQueue").unwrap();
        assert_eq!(queue.visibility_timeout, Some(Duration::from_secs(360)));
        // maxReceiveCount is !Ref MaxReceiveCount: the parameter's default.
        assert_eq!(queue.redrive, Some(("JobsDeadLetterQueue".to_owned(), 3)));
        let dlq = t.queue("JobsDeadLetterQueue").unwrap();
        assert_eq!(dlq.retention, Some(Duration::from_secs(1_209_600)));
        let schedules = t.schedules().unwrap();
        let mut scheduled: Vec<(&str, Duration)> = schedules
            .iter()
            .map(|s| (s.function.binary.as_str(), s.rate))
            .collect();
        scheduled.sort();
        assert_eq!(
            scheduled,
            [
                ("index-writer", Duration::from_secs(300)),
                ("sweeper", Duration::from_secs(300))
            ]
        );
        let bucket = t.bucket("IndexBucket").unwrap();
        assert_eq!(bucket.encryption.as_deref(), Some("AES256"));
        assert!(bucket.blocks_public_access);
        assert_eq!(
            bucket.lifecycle,
            [LifecycleRule {
                id: "ExpireOldIndexImages".into(),
                prefix: "index/".into(),
                expiration_days: Some(3),
                abort_incomplete_upload_days: Some(1),
            }]
        );
        let people = t.table("PeopleTable").unwrap();
        assert_eq!(people.key, vec![("id".to_owned(), "HASH".to_owned())]);
        assert_eq!(people.indexes[0].0, "by_version");
    }

    #[test]
    fn routes_match_paths_with_parameters() {
        let route = HttpRoute {
            method: "GET".into(),
            path: "/people/{id}".into(),
            function: FunctionRef {
                logical_id: "F".into(),
                binary: "f".into(),
            },
        };
        let params = route.matches("get", "/people/p1").unwrap();
        assert_eq!(params.get("id").map(String::as_str), Some("p1"));
        assert!(route.matches("GET", "/people").is_none());
        assert!(route.matches("GET", "/people/").is_none());
        assert!(route.matches("GET", "/people/p1/x").is_none());
        assert!(route.matches("POST", "/people/p1").is_none());
    }

    #[test]
    fn rates_read_as_eventbridge_writes_them() {
        assert_eq!(
            parse_rate("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_rate("rate(2 hours)"),
            Some(Duration::from_secs(7_200))
        );
        assert_eq!(parse_rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        for bad in [
            "rate(0 minutes)",
            "rate(5)",
            "cron(0 12 * * ? *)",
            "rate(5 weeks)",
            "5 minutes",
        ] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
        let t = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Events:\n        Nightly: {Type: Schedule, Properties: {Schedule: cron(0 1 * * ? *)}}\n",
        )
        .unwrap();
        let e = t.schedules().unwrap_err().to_string();
        assert!(e.contains("Nightly") && e.contains("cron"), "{e}");
    }

    #[test]
    fn a_broken_template_is_an_error_that_says_what() {
        let t = Template::parse("Resources: {}").unwrap();
        let e = t.sqs_event_source().unwrap_err().to_string();
        assert!(e.contains("EventSourceMapping"), "{e}");
        assert!(Template::parse("a: [").is_err());
    }
}
