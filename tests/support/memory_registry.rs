//! A registry held in memory: enough of the distribution API (`/v2/`) for
//! `wasm_engine push`, the library's `push_layers` and `push_manifest`, and
//! the engine's pulls, so most tests need no `docker-registry` installed.
//!
//! It serves manifests (GET and HEAD, by tag or by digest, with their media
//! type and `Docker-Content-Digest`), blobs (GET and HEAD), and blob uploads
//! (`POST .../blobs/uploads/`, then any number of `PATCH` chunks and a closing
//! `PUT ...?digest=`, or a monolithic `POST ...?digest=`), checking every
//! uploaded digest. It does not check that a manifest's blobs exist, convert
//! manifests between media types, authenticate, or delete: tests of what a
//! real registry does use [`super::Registry::start_real`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasm_engine::registry::Digest;

/// What the registry holds, per repository.
#[derive(Default)]
struct Contents {
    /// `(repository, tag)` to manifest digest.
    tags: HashMap<(String, String), String>,
    /// `(repository, digest)` to `(media type, bytes)`.
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    /// `(repository, digest)` to bytes.
    blobs: HashMap<(String, String), Vec<u8>>,
    /// Upload id to `(repository, bytes so far)`.
    uploads: HashMap<u64, (String, Vec<u8>)>,
}

/// Serves on 127.0.0.1 (ephemeral port) until dropped.
pub struct MemoryRegistry {
    pub address: String,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MemoryRegistry {
    pub fn start() -> Self {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0").expect("binding the in-memory registry"),
        );
        let address = server
            .server_addr()
            .to_ip()
            .expect("an IP listener")
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let contents = Arc::new(Mutex::new(Contents::default()));
        let next_upload = Arc::new(AtomicU64::new(1));
        // A few threads, so concurrent pulls (and a slow reader) do not queue.
        let threads = (0..4)
            .map(|_| {
                let (server, stop, contents, next_upload) = (
                    server.clone(),
                    stop.clone(),
                    contents.clone(),
                    next_upload.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                            serve(request, &contents, &next_upload);
                        }
                    }
                })
            })
            .collect();
        Self {
            address,
            stop,
            threads,
        }
    }
}

impl Drop for MemoryRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// An answer before it is sent.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// A registry error body in the distribution API's JSON form.
    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json")
            .body(
                serde_json::json!({"errors": [{"code": code, "message": message}]})
                    .to_string()
                    .into_bytes(),
            )
    }
}

/// The routes of the distribution API, parsed from a path below `/v2/`.
enum Route<'a> {
    Base,
    Manifest {
        repository: &'a str,
        reference: &'a str,
    },
    Blob {
        repository: &'a str,
        digest: &'a str,
    },
    StartUpload {
        repository: &'a str,
    },
    Upload {
        repository: &'a str,
        id: &'a str,
    },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Route::Base);
    }
    // Repository names hold slashes: split at the last keyword.
    if let Some((repository, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(if id.is_empty() {
            Route::StartUpload { repository }
        } else {
            Route::Upload { repository, id }
        });
    }
    if let Some((repository, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Route::Manifest {
            repository,
            reference,
        });
    }
    let (repository, digest) = rest.rsplit_once("/blobs/")?;
    Some(Route::Blob { repository, digest })
}

fn serve(mut request: tiny_http::Request, contents: &Mutex<Contents>, next_upload: &AtomicU64) {
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let digest_parameter = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("digest="))
        .map(|digest| digest.replace("%3A", ":").replace("%3a", ":"));
    let content_type = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Content-Type"))
        .map(|header| header.value.as_str().to_owned())
        .unwrap_or_default();
    let mut body = Vec::new();
    if request.as_reader().read_to_end(&mut body).is_err() {
        return;
    }
    let answer = {
        let mut contents = contents.lock().unwrap();
        match (method.as_str(), route(path)) {
            ("GET" | "HEAD", Some(Route::Base)) => Answer::new(200)
                .header("Content-Type", "application/json")
                .body(b"{}".to_vec()),
            (
                "GET" | "HEAD",
                Some(Route::Manifest {
                    repository,
                    reference,
                }),
            ) => get_manifest(&contents, repository, reference),
            (
                "PUT",
                Some(Route::Manifest {
                    repository,
                    reference,
                }),
            ) => put_manifest(&mut contents, repository, reference, &content_type, body),
            ("GET" | "HEAD", Some(Route::Blob { repository, digest })) => {
                match contents
                    .blobs
                    .get(&(repository.to_owned(), digest.to_owned()))
                {
                    Some(blob) => Answer::new(200)
                        .header("Content-Type", "application/octet-stream")
                        .header("Docker-Content-Digest", digest)
                        .body(blob.clone()),
                    None => Answer::error(404, "BLOB_UNKNOWN", "blob unknown to registry"),
                }
            }
            ("POST", Some(Route::StartUpload { repository })) => match digest_parameter {
                Some(digest) => finish_upload(&mut contents, repository, &digest, body),
                None => {
                    let id = next_upload.fetch_add(1, Ordering::Relaxed);
                    contents
                        .uploads
                        .insert(id, (repository.to_owned(), Vec::new()));
                    upload_accepted(repository, id, 0)
                }
            },
            ("PATCH", Some(Route::Upload { repository, id })) => {
                match upload(&mut contents, repository, id) {
                    Some((id, bytes)) => {
                        bytes.extend_from_slice(&body);
                        let length = bytes.len();
                        upload_accepted(repository, id, length)
                    }
                    None => Answer::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
                }
            }
            ("PUT", Some(Route::Upload { repository, id })) => {
                let Some(digest) = digest_parameter else {
                    return respond(
                        request,
                        Answer::error(400, "DIGEST_INVALID", "no digest parameter"),
                    );
                };
                match upload(&mut contents, repository, id).map(|(id, _)| id) {
                    Some(id) => {
                        let (_, mut bytes) = contents.uploads.remove(&id).expect("the upload");
                        bytes.extend_from_slice(&body);
                        finish_upload(&mut contents, repository, &digest, bytes)
                    }
                    None => Answer::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
                }
            }
            (_, Some(_)) => Answer::error(405, "UNSUPPORTED", "method not allowed"),
            (_, None) => Answer::error(404, "NAME_UNKNOWN", "no such route"),
        }
    };
    // tiny_http leaves out the body of an answer to HEAD, keeping its length.
    respond(request, answer);
}

fn respond(request: tiny_http::Request, answer: Answer) {
    let mut response = tiny_http::Response::from_data(answer.body).with_status_code(answer.status);
    for (name, value) in answer.headers {
        response.add_header(
            tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                .expect("a valid header"),
        );
    }
    let _ = request.respond(response);
}

fn get_manifest(contents: &Contents, repository: &str, reference: &str) -> Answer {
    let digest = if reference.starts_with("sha256:") {
        reference.to_owned()
    } else {
        match contents
            .tags
            .get(&(repository.to_owned(), reference.to_owned()))
        {
            Some(digest) => digest.clone(),
            None => return Answer::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        }
    };
    match contents
        .manifests
        .get(&(repository.to_owned(), digest.clone()))
    {
        Some((media_type, bytes)) => Answer::new(200)
            .header("Content-Type", media_type.clone())
            .header("Docker-Content-Digest", digest)
            .body(bytes.clone()),
        None => Answer::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
    }
}

fn put_manifest(
    contents: &mut Contents,
    repository: &str,
    reference: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let digest = Digest::of(&body).to_string();
    if reference.starts_with("sha256:") && reference != digest {
        return Answer::error(400, "DIGEST_INVALID", "manifest digest does not match");
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return Answer::error(400, "MANIFEST_INVALID", "manifest is not JSON");
    }
    if !reference.starts_with("sha256:") {
        contents.tags.insert(
            (repository.to_owned(), reference.to_owned()),
            digest.clone(),
        );
    }
    contents.manifests.insert(
        (repository.to_owned(), digest.clone()),
        (content_type.to_owned(), body),
    );
    Answer::new(201)
        .header("Location", format!("/v2/{repository}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest)
}

/// The upload `id` of `repository`, and its bytes so far.
fn upload<'a>(
    contents: &'a mut Contents,
    repository: &str,
    id: &str,
) -> Option<(u64, &'a mut Vec<u8>)> {
    let id: u64 = id.parse().ok()?;
    match contents.uploads.get_mut(&id) {
        Some((owner, bytes)) if owner == repository => Some((id, bytes)),
        _ => None,
    }
}

fn upload_accepted(repository: &str, id: u64, length: usize) -> Answer {
    Answer::new(202)
        .header("Location", format!("/v2/{repository}/blobs/uploads/{id}"))
        .header("Docker-Upload-UUID", id.to_string())
        .header("Range", format!("0-{}", length.saturating_sub(1)))
}

fn finish_upload(
    contents: &mut Contents,
    repository: &str,
    digest: &str,
    bytes: Vec<u8>,
) -> Answer {
    if Digest::of(&bytes).as_str() != digest {
        return Answer::error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    contents
        .blobs
        .insert((repository.to_owned(), digest.to_owned()), bytes);
    Answer::new(201)
        .header("Location", format!("/v2/{repository}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest)
}
