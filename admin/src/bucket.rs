//! The index-image bucket, as template.yaml declares `IndexBucket`: its
//! default encryption, public-access block and lifecycle rules (old images
//! expire; failed multipart uploads are aborted). For emulators and stacks
//! without the template's bucket.

use anyhow::Context;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use people_aws::template::BucketSpec;

/// Whether the bucket was made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    Created,
    Existed,
}

/// Creates bucket `name` unless it exists, then sets `spec`'s encryption,
/// public-access block and lifecycle rules on it (again, if it existed).
pub(crate) async fn create_bucket(
    client: &Client,
    name: &str,
    spec: &BucketSpec,
) -> anyhow::Result<Made> {
    // Asked first: in us-east-1, S3 (and moto) answer 200 to creating a
    // bucket the caller already owns.
    let made = match client.head_bucket().bucket(name).send().await {
        Ok(_) => Made::Existed,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
            match client.create_bucket().bucket(name).send().await {
                Ok(_) => Made::Created,
                // Made by someone else between the two calls.
                Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Made::Existed,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("creating the bucket {name:?}"))
                    );
                }
            }
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("looking for the bucket {name:?}")));
        }
    };
    if let Some(algorithm) = &spec.encryption {
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::from(algorithm.as_str()))
            .build()?;
        client
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(default)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("setting the default encryption of {name:?}"))?;
    }
    if spec.blocks_public_access {
        client
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .block_public_policy(true)
                    .ignore_public_acls(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("blocking public access to {name:?}"))?;
    }
    if !spec.lifecycle.is_empty() {
        let rules = spec
            .lifecycle
            .iter()
            .map(lifecycle_rule)
            .collect::<Result<Vec<_>, _>>()?;
        client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("setting the lifecycle rules of {name:?}"))?;
    }
    Ok(made)
}

fn lifecycle_rule(rule: &people_aws::template::LifecycleRule) -> anyhow::Result<LifecycleRule> {
    let mut out = LifecycleRule::builder()
        .id(&rule.id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(&rule.prefix).build());
    if let Some(days) = rule.expiration_days {
        out = out.expiration(LifecycleExpiration::builder().days(days as i32).build());
    }
    if let Some(days) = rule.abort_incomplete_upload_days {
        out = out.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days as i32)
                .build(),
        );
    }
    Ok(out.build()?)
}
