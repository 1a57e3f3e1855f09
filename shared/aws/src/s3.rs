//! Index images in an S3 bucket (`search::image` is the format).
//!
//! Keys are `index/<feed version, 20 digits>-<written ms, 13 digits>.img`,
//! so the newest image is the greatest key: one ListObjectsV2 finds it, and
//! no pointer object has to be kept consistent with the images. A lifecycle
//! rule on the prefix expires old ones (template.yaml).
//!
//! Reading: ranged GETs of `read_part` bytes, `parallel` of them in flight,
//! handed in order to the decoder on a blocking thread; at most about
//! 2 × `parallel` parts are in memory, never the whole image. Writing: the
//! encoder on a blocking thread fills parts that are uploaded as they come
//! (a multipart upload; one PutObject when the image fits in one part).

use std::error::Error as StdError;
use std::io::{Read, Write};
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::sdk_error::{CallError, classify, store_error};
use people_app::ports::StoreError;
use people_core::search::{FeedPosition, ImageError, ImageHeader, IndexImage, Snapshot};

const PREFIX: &str = "index/";
/// S3 refuses multipart parts under 5 MiB (but the last).
pub const MIN_PART: usize = 5 * 1024 * 1024;
const DEFAULT_PART: usize = 8 * 1024 * 1024;
const DEFAULT_PARALLEL: usize = 4;

/// An image in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("the index image bucket could not be used")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

#[derive(Clone)]
pub struct S3ImageStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    read_part: usize,
    write_part: usize,
    parallel: usize,
}

impl S3ImageStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            read_part: DEFAULT_PART,
            write_part: DEFAULT_PART,
            parallel: DEFAULT_PARALLEL,
        }
    }

    /// Bytes per ranged GET (any size) and per uploaded part (at least
    /// [`MIN_PART`]).
    pub fn with_parts(mut self, read_part: usize, write_part: usize) -> Self {
        self.read_part = read_part.max(1);
        self.write_part = write_part.max(MIN_PART);
        self
    }

    /// Requests in flight at once.
    pub fn with_parallel(mut self, parallel: usize) -> Self {
        self.parallel = parallel.max(1);
        self
    }

    fn call_error(
        &self,
        operation: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> CallError {
        CallError::new("S3", operation, "bucket", &self.bucket, source)
    }

    /// A failed call, as [`classify`] finds it.
    fn error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        store_error(classify(&err), self.call_error(operation, err))
    }

    /// The key an image current with `position` gets when written at
    /// `written_ms`.
    pub fn key_for(position: FeedPosition, written_ms: u64) -> String {
        format!("{PREFIX}{:020}-{written_ms:013}.img", position.version)
    }

    /// The newest image, if there is one.
    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn newest(&self) -> Result<Option<StoredImage>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(PREFIX)
            .into_paginator()
            .send();
        let mut newest: Option<StoredImage> = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", e))?;
            for object in page.contents() {
                let (Some(key), Some(size)) = (object.key(), object.size()) else {
                    continue;
                };
                // Only keys of the writer's form: a stray upload (a
                // `.tmp`, a folder marker) is not an image.
                if !key.ends_with(".img") {
                    continue;
                }
                if newest.as_ref().is_none_or(|n| key > n.key.as_str()) {
                    newest = Some(StoredImage {
                        key: key.to_owned(),
                        size: size.max(0) as u64,
                    });
                }
            }
        }
        Ok(newest)
    }

    /// Reads and decodes `image` through parallel ranged GETs.
    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    pub async fn load(&self, image: &StoredImage) -> Result<IndexImage, ImageStoreError> {
        let part = self.read_part as u64;
        let ranges: Vec<(u64, u64)> = (0..image.size.div_ceil(part))
            .map(|i| (i * part, ((i + 1) * part).min(image.size) - 1))
            .collect();
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(self.parallel);
        let decoder = tokio::task::spawn_blocking(move || {
            people_core::search::read_image(ChannelReader {
                rx,
                current: Bytes::new(),
            })
        });
        let mut parts = futures::stream::iter(ranges)
            .map(|(first, last)| self.get_range(&image.key, first, last))
            .buffered(self.parallel);
        let mut failed = None;
        while let Some(part) = parts.next().await {
            match part {
                Ok(bytes) => {
                    if tx.send(Ok(bytes)).await.is_err() {
                        // The decoder stopped early: it has its error.
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    let _ = tx
                        .send(Err(std::io::Error::other("an S3 GET of the image failed")))
                        .await;
                    break;
                }
            }
        }
        drop(tx);
        let decoded = decoder
            .await
            .map_err(|e| StoreError::Permanent(Box::new(e)))?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(decoded?)
    }

    async fn get_range(&self, key: &str, first: u64, last: u64) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(|e| self.error("GetObject", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(self.call_error("GetObject (body)", e))))?
            .into_bytes();
        if bytes.len() as u64 != last - first + 1 {
            // The object is shorter than listed: it was replaced or cut.
            return Err(StoreError::Permanent(Box::new(self.call_error(
                "GetObject",
                format!(
                    "asked for bytes {first}-{last} of {key}, got {} bytes",
                    bytes.len()
                ),
            ))));
        }
        Ok(bytes)
    }

    /// Writes `snapshot` as a new image current with `position`.
    #[tracing::instrument(skip(self, snapshot), fields(bucket = %self.bucket))]
    pub async fn save(
        &self,
        snapshot: Arc<Snapshot>,
        position: FeedPosition,
    ) -> Result<(StoredImage, ImageHeader), ImageStoreError> {
        let written_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let key = Self::key_for(position, written_ms);
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let part = self.write_part;
        let encoder = tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter {
                tx,
                buf: Vec::with_capacity(part),
                part,
            };
            let header = people_core::search::write_image(&snapshot, position, &mut out)?;
            out.send_rest()?;
            Ok::<_, ImageError>(header)
        });
        let first = rx.recv().await;
        let second = match first {
            Some(_) => rx.recv().await,
            None => None,
        };
        let uploaded = match (first, second) {
            (None, _) => Ok(0),
            (Some(only), None) => {
                let size = only.len() as u64;
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .body(ByteStream::from(only))
                    .send()
                    .await
                    .map(|_| size)
                    .map_err(|e| self.error("PutObject", e))
            }
            (Some(a), Some(b)) => self.upload_parts(&key, a, b, rx).await,
        };
        let header = encoder
            .await
            .map_err(|e| StoreError::Permanent(Box::new(e)))?;
        let header = header?;
        let size = uploaded?;
        Ok((StoredImage { key, size }, header))
    }

    async fn upload_parts(
        &self,
        key: &str,
        first: Bytes,
        second: Bytes,
        mut rx: mpsc::Receiver<Bytes>,
    ) -> Result<u64, StoreError> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", e))?;
        let Some(upload_id) = upload.upload_id().map(str::to_owned) else {
            return Err(StoreError::Permanent(
                "CreateMultipartUpload gave no upload id".into(),
            ));
        };
        let rest =
            futures::stream::unfold(
                &mut rx,
                |rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        let parts = futures::stream::iter([first, second])
            .chain(rest)
            .enumerate()
            .map(|(i, body)| {
                let upload_id = &upload_id;
                async move {
                    let number = i as i32 + 1;
                    let size = body.len() as u64;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(body))
                        .send()
                        .await
                        .map_err(|e| self.error("UploadPart", e))?;
                    Ok::<_, StoreError>((
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_owned))
                            .build(),
                        size,
                    ))
                }
            })
            .buffer_unordered(self.parallel)
            .try_collect::<Vec<_>>()
            .await;
        let result = match parts {
            Ok(mut parts) => {
                parts.sort_by_key(|(p, _)| p.part_number());
                let size = parts.iter().map(|(_, s)| s).sum();
                let parts: Vec<CompletedPart> = parts.into_iter().map(|(p, _)| p).collect();
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map(|_| size)
                    .map_err(|e| self.error("CompleteMultipartUpload", e))
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Drain the encoder so it ends, and leave no parts billed.
            rx.close();
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(error = %self.error("AbortMultipartUpload", e), key, "could not abort a failed image upload");
            }
        }
        result
    }
}

/// The decoder's input: the parts, in order, as the GETs deliver them.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The encoder's output: parts of `part` bytes, sent as they fill.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    part: usize,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| std::io::Error::other("the image upload stopped"))
    }

    fn send_rest(&mut self) -> Result<(), ImageError> {
        if !self.buf.is_empty() {
            self.send().map_err(ImageError::Io)?;
        }
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.part - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
