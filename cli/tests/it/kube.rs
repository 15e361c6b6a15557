//! `qyvol kube`: its output read back strictly into the Kubernetes API's own types
//! (k8s-openapi): each object must deserialize, and serialize back to exactly what was
//! printed, so a misspelt or misplaced field fails.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::node::v1::RuntimeClass;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fixture::{Scratch, qyvol_in, repo_root, stderr, stdout};

/// The YAML documents of `qyvol kube args...`, as JSON values.
fn kube(home: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = qyvol_in(home)
        .arg("kube")
        .args(args)
        .output()
        .expect("kube");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .collect()
}

/// `value` as a `T`, checked to round-trip exactly.
fn strict<T: DeserializeOwned + Serialize>(value: &serde_json::Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).expect("a valid object");
    assert_eq!(
        &serde_json::to_value(&typed).expect("serialize"),
        value,
        "fields k8s-openapi does not know, or of the wrong shape"
    );
    typed
}

#[test]
fn an_http_app_gets_a_runtime_class_a_deployment_and_a_service() {
    let s = Scratch::new();
    let docs = kube(
        &s.path("home"),
        &[
            repo_root()
                .join("examples/http-hello/http-hello.qyv")
                .to_str()
                .expect("utf-8"),
            "--image",
            "registry.lan/http-hello:1",
            "--replicas",
            "3",
        ],
    );
    assert_eq!(docs.len(), 3);
    let class: RuntimeClass = strict(&docs[0]);
    assert_eq!(class.handler, "qyvol");
    assert_eq!(class.metadata.name.as_deref(), Some("qyvol"));

    let deployment: Deployment = strict(&docs[1]);
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.runtime_class_name.as_deref(), Some("qyvol"));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.lan/http-hello:1")
    );
    // The program's name, which a Wasm OCI artifact's config does not give (CRI refuses a
    // container without one).
    assert_eq!(container.command, Some(vec!["/app.wasm".to_string()]));
    // `environment: edge`: 128 MiB and 5 s unless the manifest says otherwise.
    let limits = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits["memory"].0, "128Mi");
    let annotations = spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .expect("annotations");
    assert_eq!(annotations["qyvol.dev/timeout"], "5s");
    assert_eq!(
        container.ports.as_ref().expect("ports")[0].container_port,
        8080
    );

    let service: Service = strict(&docs[2]);
    let ports = service.spec.expect("spec").ports.expect("ports");
    assert_eq!(ports[0].port, 80);
}

#[test]
fn a_command_image_gets_no_service_and_its_requests_become_the_allow_net_annotation() {
    let s = Scratch::new();
    let home = s.path("home");
    std::fs::copy(
        repo_root().join("examples/hello.wasm"),
        s.path("hello.wasm"),
    )
    .expect("copy");
    let manifest = s.write(
        "app.qyv",
        "version: 1\nname: fetcher\nentrypoint: hello.wasm\nruntime: wasi\nlimits:\n  memory: 64MiB\nnetwork:\n  allow:\n    - api.example.com:443\n",
    );
    let out = qyvol_in(&home)
        .args(["build", "-q", "-t", "localhost:5000/fetcher:2"])
        .arg(&manifest)
        .output()
        .expect("build");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = kube(&home, &["localhost:5000/fetcher:2"]);
    assert_eq!(docs.len(), 2, "no Service for a command");
    let deployment: Deployment = strict(&docs[1]);
    let template = deployment.spec.template;
    let annotations = template
        .metadata
        .and_then(|m| m.annotations)
        .expect("annotations");
    assert_eq!(annotations["qyvol.dev/allow-net"], "api.example.com:443");
    let container = &template.spec.expect("pod").containers[0];
    assert_eq!(container.image.as_deref(), Some("localhost:5000/fetcher:2"));
    assert!(container.ports.is_none());
}

#[test]
fn a_file_without_an_image_is_refused_with_a_hint() {
    let s = Scratch::new();
    let out = qyvol_in(&s.path("home"))
        .env("QYVOL_LANG", "en")
        .arg("kube")
        .arg(repo_root().join("examples/hello.qyv"))
        .output()
        .expect("kube");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--image REF"), "{}", stderr(&out));
}
